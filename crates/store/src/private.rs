//! Private directories: the journal, the settings and the logs name broker accounts and
//! positions, so the directories holding them are the user's alone.

use std::path::Path;

/// Creates `dir` and its missing parents readable by the user only (mode 0700 on Unix) and
/// tightens an existing `dir` to 0700. Parents that already exist are left as they are. On
/// other platforms the directory is created with the platform's default access (the user's
/// profile). A directory that cannot be made private (not the user's) is an error, not a
/// silent skip.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o7777;
        if mode != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn new_directories_are_private_and_existing_ones_are_tightened() {
        let root = tempfile::tempdir().unwrap();
        let new = root.path().join("a/b/c");
        create_private_dir(&new).unwrap();
        assert_eq!(mode(&new), 0o700);
        assert_eq!(mode(&root.path().join("a")), 0o700, "missing parents too");
        let open = root.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(open.join("keep.txt"), "x").unwrap();
        create_private_dir(&open).unwrap();
        assert_eq!(mode(&open), 0o700);
        assert_eq!(std::fs::read_to_string(open.join("keep.txt")).unwrap(), "x");
        // Idempotent.
        create_private_dir(&open).unwrap();
        assert_eq!(mode(&open), 0o700);
    }

    #[test]
    fn a_file_in_the_way_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        let f = root.path().join("f");
        std::fs::write(&f, "x").unwrap();
        assert!(create_private_dir(&f).is_err());
    }
}
