#!/usr/bin/env python3
"""Builds Tradeguard's .deb from the root tauri.conf.json and the workspace Cargo.toml.

Why not `tauri build`: the Tauri CLI cannot bundle with tauri.conf.json at the repository root
(it looks for it inside src-tauri). Rather than keep a second config, this script reads the one
root config (product name, identifier, description, category, icons, Debian depends/section/
priority) and the one version (the workspace's `[workspace.package] version`, which the app
also reports) and lays out the package with dpkg-deb. No downloads at build time.

Usage: package_deb.py --bin-dir DIR --out DIR [--strip] [--fast]
  DIR holds the built `tradeguard-app` and `tradeguard` binaries (target/release or target/debug).
Prints the path of the .deb."""
import argparse
import json
import shutil
import struct
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "tradeguard"
BINARIES = {"tradeguard-app": "the desktop app", "tradeguard": "the command-line guard and calculators"}


class PackageError(Exception):
    pass


def version() -> str:
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    try:
        return cargo["workspace"]["package"]["version"]
    except KeyError as e:
        raise PackageError("Cargo.toml has no [workspace.package] version") from e


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise PackageError(f"{path} is not a PNG")
    return struct.unpack(">II", head[16:24])


def arch() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], check=True, capture_output=True, text=True).stdout.strip()


def desktop_entry(conf: dict) -> str:
    bundle = conf.get("bundle", {})
    categories = {"Finance": "Office;Finance;"}.get(bundle.get("category", ""), "Utility;")
    return "\n".join(
        [
            "[Desktop Entry]",
            "Type=Application",
            f"Name={conf['productName']}",
            f"Comment={bundle.get('shortDescription', '')}",
            "Exec=tradeguard-app",
            f"Icon={PACKAGE}",
            "Terminal=false",
            f"Categories={categories}",
            "StartupWMClass=tradeguard-app",
            "",
        ]
    )


def control(conf: dict, ver: str, installed_kib: int) -> str:
    bundle = conf.get("bundle", {})
    deb = bundle.get("linux", {}).get("deb", {})
    long = bundle.get("longDescription", "")
    # Debian: continuation lines of the description start with a space.
    long_lines = "\n".join(" " + line for line in textwrap.wrap(long, 78)) if long else " ."
    fields = [
        f"Package: {PACKAGE}",
        f"Version: {ver}",
        f"Architecture: {arch()}",
        f"Maintainer: {bundle.get('publisher', conf['productName'])} <packages@tradeguard.invalid>",
        f"Installed-Size: {installed_kib}",
        f"Section: {deb.get('section', 'misc')}",
        f"Priority: {deb.get('priority', 'optional')}",
    ]
    if deb.get("depends"):
        fields.append("Depends: " + ", ".join(deb["depends"]))
    fields.append(f"Description: {bundle.get('shortDescription', conf['productName'])}")
    fields.append(long_lines)
    return "\n".join(fields) + "\n"


def build(bin_dir: Path, out: Path, strip: bool, fast: bool) -> Path:
    conf = json.loads((ROOT / "tauri.conf.json").read_text())
    ver = version()
    stage = out / f"{PACKAGE}_{ver}_{arch()}"
    if stage.exists():
        shutil.rmtree(stage)
    (stage / "DEBIAN").mkdir(parents=True)
    usr = stage / "usr"
    (usr / "bin").mkdir(parents=True)
    for name in BINARIES:
        src = bin_dir / name
        if not src.is_file():
            raise PackageError(f"{src} is missing: build it first (make package builds release)")
        dst = usr / "bin" / name
        shutil.copy2(src, dst)
        if strip:
            subprocess.run(["strip", "--strip-unneeded", str(dst)], check=True)
        dst.chmod(0o755)
    apps = usr / "share" / "applications"
    apps.mkdir(parents=True)
    (apps / f"{PACKAGE}.desktop").write_text(desktop_entry(conf))
    icons = conf.get("bundle", {}).get("icon", [])
    if not icons:
        raise PackageError("tauri.conf.json lists no bundle icons")
    for rel in icons:
        icon = ROOT / rel
        w, h = png_size(icon)
        folder = usr / "share" / "icons" / "hicolor" / f"{w}x{h}" / "apps"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(icon, folder / f"{PACKAGE}.png")
    doc = usr / "share" / "doc" / PACKAGE
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(
        f"{conf['productName']} {ver}\nLicense: MIT\nSource: built from the Tradeguard repository.\n"
    )
    size_kib = sum(p.stat().st_size for p in stage.rglob("*") if p.is_file()) // 1024 + 1
    (stage / "DEBIAN" / "control").write_text(control(conf, ver, size_kib))
    deb = out / f"{stage.name}.deb"
    subprocess.run(
        ["dpkg-deb", "--build", "--root-owner-group", *(["-Zgzip", "-z1"] if fast else ["-Zxz"]), str(stage), str(deb)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    shutil.rmtree(stage)
    return deb


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--strip", action="store_true", help="strip debug symbols")
    ap.add_argument("--fast", action="store_true", help="light compression (test packages)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        print(build(args.bin_dir, args.out, args.strip, args.fast))
    except (PackageError, OSError, subprocess.CalledProcessError) as e:
        print(f"package: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
