//! How WebKitGTK is set up on Linux, decided before GTK starts.
//!
//! WebKitGTK reads these settings from the environment only. By default the app process
//! initialises OpenGL twice without ever drawing with it: GTK opens a GLX context to choose a
//! visual, and WebKit opens an EGL display only to ask which render device the web process
//! should use. Each loads the system's Mesa driver, and Debian's driver links LLVM: about
//! 24 MiB of the app process's idle memory (`scripts/measure-app.sh`). Here the app process
//! draws with cairo, the web process still renders with the GPU (or Mesa's software renderer
//! when there is none), and WebKit is told the render device instead of probing for it.
//!
//! The web process's JavaScriptCore runs this UI with its interpreter and baseline JIT only:
//! the optimizing tiers held about 15 MiB more for no measured gain (README, Benchmarks).
//!
//! A variable already set in the environment is never changed, so any of these can be undone
//! from the command line (for example
//! `WEBKIT_DISABLE_DMABUF_RENDERER=0 GDK_GL= JSC_useDFGJIT=1 tradeguard-app`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// One environment variable this module sets, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSetting {
    pub name: &'static str,
    pub value: String,
    pub why: &'static str,
}

/// The settings to apply, given the current environment (`get`) and the DRM render nodes
/// present (`/dev/dri/renderD*`, any order). Variables already set are left out.
pub fn plan(get: impl Fn(&str) -> Option<OsString>, render_nodes: &[PathBuf]) -> Vec<EnvSetting> {
    let render_device = {
        let mut nodes = render_nodes.to_vec();
        nodes.sort();
        match nodes.first() {
            // WebKit's own fallback when EGL cannot name the device is the first render node.
            Some(node) => node.display().to_string(),
            // No GPU: the web process renders with Mesa's software rasterizer on a surfaceless
            // display. WebKit would find no device either; an empty value is ignored by WebKit,
            // and a path that is not a DRM device gives the same surfaceless display.
            None => "/dev/null".to_owned(),
        }
    };
    let wanted = [
        EnvSetting {
            name: "WEBKIT_DISABLE_DMABUF_RENDERER",
            value: "1".to_owned(),
            why: "frames reach the window through shared memory, so the app process needs no GL \
                  (this also avoids the blank window some drivers give with DMA-BUF)",
        },
        EnvSetting {
            name: "GDK_GL",
            value: "disable".to_owned(),
            why: "GTK does not open a GL context to choose the window's visual",
        },
        EnvSetting {
            name: "WEBKIT_WEB_RENDER_DEVICE_FILE",
            value: render_device,
            why: "WebKit does not open an EGL display in the app process to look for the device",
        },
        EnvSetting {
            name: "JSC_useDFGJIT",
            value: "0".to_owned(),
            why: "JavaScriptCore stops at its baseline JIT: the optimizing tiers (DFG, FTL) cost \
                  about 15 MiB of the web process and gained nothing measurable on this UI \
                  (event-to-paint p95 50 vs 52 ms, 500 positions quoted at 10 Hz)",
        },
    ];
    wanted
        .into_iter()
        .filter(|s| get(s.name).is_none())
        .collect()
}

/// The DRM render nodes of this machine (empty when there is no `/dev/dri`).
pub fn render_nodes(dri: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dri) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("renderD"))
        .map(|e| e.path())
        .collect()
}

/// Applies [`plan`] to this process's environment; the web and network processes WebKit
/// starts inherit it. Returns what was set, for the log (logging is not up yet).
///
/// Must be called first in `main`, while the process has only its main thread.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn apply_before_threads() -> Vec<EnvSetting> {
    let settings = plan(
        |k| std::env::var_os(k),
        &render_nodes(Path::new("/dev/dri")),
    );
    for s in &settings {
        // SAFETY: called at the start of `main`, before any thread is spawned (no runtime,
        // no logger, no GTK yet), so nothing can read the environment concurrently.
        unsafe { std::env::set_var(s.name, &s.value) };
    }
    settings
}

#[cfg(not(target_os = "linux"))]
pub fn apply_before_threads() -> Vec<EnvSetting> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn value<'a>(plan: &'a [EnvSetting], name: &str) -> Option<&'a str> {
        plan.iter()
            .find(|s| s.name == name)
            .map(|s| s.value.as_str())
    }

    #[test]
    fn on_a_clean_environment_all_four_are_set() {
        let p = plan(env(&[]), &[PathBuf::from("/dev/dri/renderD128")]);
        assert_eq!(value(&p, "WEBKIT_DISABLE_DMABUF_RENDERER"), Some("1"));
        assert_eq!(value(&p, "GDK_GL"), Some("disable"));
        assert_eq!(
            value(&p, "WEBKIT_WEB_RENDER_DEVICE_FILE"),
            Some("/dev/dri/renderD128")
        );
        assert_eq!(value(&p, "JSC_useDFGJIT"), Some("0"));
        assert_eq!(p.len(), 4);
        assert!(p.iter().all(|s| !s.why.is_empty()));
    }

    #[test]
    fn the_first_render_node_is_chosen_whatever_the_directory_order() {
        let nodes = [
            PathBuf::from("/dev/dri/renderD129"),
            PathBuf::from("/dev/dri/renderD128"),
        ];
        let p = plan(env(&[]), &nodes);
        assert_eq!(
            value(&p, "WEBKIT_WEB_RENDER_DEVICE_FILE"),
            Some("/dev/dri/renderD128")
        );
    }

    #[test]
    fn without_a_gpu_the_device_is_a_non_drm_path() {
        let p = plan(env(&[]), &[]);
        assert_eq!(
            value(&p, "WEBKIT_WEB_RENDER_DEVICE_FILE"),
            Some("/dev/null")
        );
    }

    #[test]
    fn variables_the_user_set_are_left_alone_even_when_empty() {
        let p = plan(
            env(&[
                ("WEBKIT_DISABLE_DMABUF_RENDERER", "0"),
                ("GDK_GL", ""),
                ("JSC_useDFGJIT", "1"),
            ]),
            &[],
        );
        assert_eq!(value(&p, "WEBKIT_DISABLE_DMABUF_RENDERER"), None);
        assert_eq!(value(&p, "GDK_GL"), None);
        assert_eq!(value(&p, "JSC_useDFGJIT"), None);
        assert_eq!(p.len(), 1, "only the render device is still unset: {p:?}");
    }

    #[test]
    fn render_nodes_lists_only_render_nodes() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["card0", "renderD128", "by-path"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        assert_eq!(
            render_nodes(dir.path()),
            vec![dir.path().join("renderD128")]
        );
        assert!(render_nodes(&dir.path().join("missing")).is_empty());
    }
}
