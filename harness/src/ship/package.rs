//! The Lambda package: one executable named `bootstrap` in a zip, written with a fixed
//! timestamp and mode so that the same binary always gives the same bytes, and with them the
//! same sha256 (Lambda's `CodeSha256`, which decides whether an update changes the function).

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use thiserror::Error;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use infra::stack::Architecture;

/// The one entry a `provided.al2023` function runs.
pub const ENTRY: &str = "bootstrap";
/// rwxr-xr-x: Lambda runs the entry as is, so it must be executable for everyone.
const MODE: u32 = 0o755;
/// glibc of Lambda's `provided.al2023` runtime: a binary needing a newer symbol fails at start.
pub const LAMBDA_GLIBC: GlibcVersion = GlibcVersion(2, 34);

#[derive(Debug, Error)]
pub enum PackageError {
    #[error(
        "no Lambda package at {}: run `cargo xtask build` first",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a readable zip: {source}", path.display())]
    Zip {
        path: PathBuf,
        source: zip::result::ZipError,
    },
    #[error(
        "{}: a Lambda package holds exactly one entry named `bootstrap`; found {found:?}",
        path.display()
    )]
    Layout { path: PathBuf, found: Vec<String> },
    #[error(
        "{}: `bootstrap` has mode {mode:o}; Lambda needs it executable (0755)",
        path.display()
    )]
    NotExecutable { path: PathBuf, mode: u32 },
    #[error("`bootstrap` is not a 64-bit little-endian ELF executable")]
    NotElf,
    #[error("`bootstrap` is an ELF binary for machine {0:#x}, neither arm64 nor x86_64")]
    UnknownMachine(u16),
}

/// What a package holds, as the build and the deploy report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub path: PathBuf,
    pub zip_bytes: u64,
    pub binary_bytes: u64,
    pub sha256_hex: String,
    /// The same digest in base64: the form Lambda shows as `CodeSha256`.
    pub sha256_base64: String,
    pub arch: Architecture,
    /// The newest glibc symbol version the binary needs; `None` for a static binary.
    pub glibc: Option<GlibcVersion>,
}

impl Inspection {
    /// Size and digest lines, as every command that builds or ships a package prints them.
    pub fn summary(&self) -> String {
        let glibc = match self.glibc {
            Some(v) => format!("needs glibc {v} (Lambda provided.al2023 has {LAMBDA_GLIBC})"),
            None => "static (no glibc needed)".to_string(),
        };
        format!(
            "{} ({}): zip {}, bootstrap {}, {glibc}\n  sha256     {}\n  CodeSha256 {} (as Lambda reports it)",
            self.path.display(),
            self.arch.as_str(),
            human_bytes(self.zip_bytes),
            human_bytes(self.binary_bytes),
            self.sha256_hex,
            self.sha256_base64
        )
    }
}

/// `major.minor` of a glibc symbol version such as `GLIBC_2.34`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GlibcVersion(pub u32, pub u32);

impl std::fmt::Display for GlibcVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// The zip for `binary`: one deflated entry, 1980-01-01 00:00:00, mode 0755, nothing else that
/// could vary between runs (no extra fields, no comment).
pub fn zip_bytes(binary: &[u8]) -> Result<Vec<u8>, zip::result::ZipError> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(9))
        .last_modified_time(DateTime::default())
        .unix_permissions(MODE)
        .large_file(false);
    writer.start_file(ENTRY, options)?;
    writer.write_all(binary)?;
    Ok(writer.finish()?.into_inner())
}

/// Writes the package for `binary` to `path` through a temporary file, so an interrupted build
/// never leaves a half-written package for a later `--no-build` to ship.
pub fn write(binary: &[u8], path: &Path) -> Result<(), PackageError> {
    let io = |source| PackageError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bytes = zip_bytes(binary).map_err(|source| PackageError::Zip {
        path: path.to_path_buf(),
        source,
    })?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let partial = path.with_extension("zip.partial");
    std::fs::write(&partial, bytes).map_err(io)?;
    std::fs::rename(&partial, path).map_err(io)
}

/// The `bootstrap` bytes of a package, after checking its layout and mode.
pub fn read_bootstrap(path: &Path) -> Result<Vec<u8>, PackageError> {
    let bytes = read_file(path)?;
    let zip_error = |source| PackageError::Zip {
        path: path.to_path_buf(),
        source,
    };
    let mut archive = ZipArchive::new(Cursor::new(bytes)).map_err(zip_error)?;
    let names = archive
        .file_names()
        .map(|name| name.map(|n| n.into_owned()))
        .collect::<Result<Vec<String>, _>>()
        .map_err(zip_error)?;
    if names != [ENTRY] {
        return Err(PackageError::Layout {
            path: path.to_path_buf(),
            found: names,
        });
    }
    let mut entry = archive.by_index(0).map_err(zip_error)?;
    let mode = entry.unix_mode().unwrap_or(0);
    if mode & 0o111 != 0o111 {
        return Err(PackageError::NotExecutable {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut binary = Vec::new();
    entry
        .read_to_end(&mut binary)
        .map_err(|source| PackageError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(binary)
}

/// Size, digests, architecture and glibc needs of the package at `path`.
pub fn inspect(path: &Path) -> Result<Inspection, PackageError> {
    let zip = read_file(path)?;
    let binary = read_bootstrap(path)?;
    let digest = Sha256::digest(&zip);
    Ok(Inspection {
        path: path.to_path_buf(),
        zip_bytes: zip.len() as u64,
        binary_bytes: binary.len() as u64,
        sha256_hex: digest.iter().map(|b| format!("{b:02x}")).collect(),
        sha256_base64: base64(&digest),
        arch: elf_arch(&binary)?,
        glibc: max_glibc(&binary),
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>, PackageError> {
    std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            PackageError::Missing {
                path: path.to_path_buf(),
            }
        } else {
            PackageError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// ELF `e_machine` of the two architectures Lambda runs.
pub fn elf_machine(arch: Architecture) -> u16 {
    match arch {
        Architecture::Arm64 => 0xB7,
        Architecture::X86_64 => 0x3E,
    }
}

/// The architecture an ELF executable was built for.
pub fn elf_arch(binary: &[u8]) -> Result<Architecture, PackageError> {
    // e_ident: magic, class 2 (64-bit), data 1 (little-endian); e_machine at offset 18.
    if binary.len() < 20 || &binary[..4] != b"\x7fELF" || binary[4] != 2 || binary[5] != 1 {
        return Err(PackageError::NotElf);
    }
    let machine = u16::from_le_bytes([binary[18], binary[19]]);
    [Architecture::Arm64, Architecture::X86_64]
        .into_iter()
        .find(|arch| elf_machine(*arch) == machine)
        .ok_or(PackageError::UnknownMachine(machine))
}

/// The newest `GLIBC_x.y` version string in the binary: the dynamic linker refuses to start a
/// binary that names a version the system's glibc lacks, so this is the glibc it needs.
pub fn max_glibc(binary: &[u8]) -> Option<GlibcVersion> {
    const TAG: &[u8] = b"GLIBC_";
    let mut newest = None;
    let mut rest = binary;
    while let Some(at) = find(rest, TAG) {
        rest = &rest[at + TAG.len()..];
        let (major, after_major) = number(rest);
        let Some(major) = major else { continue };
        if after_major.first() != Some(&b'.') {
            continue;
        }
        let (minor, _) = number(&after_major[1..]);
        if let Some(minor) = minor {
            newest = newest.max(Some(GlibcVersion(major, minor)));
        }
    }
    newest
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn number(bytes: &[u8]) -> (Option<u32>, &[u8]) {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let value = std::str::from_utf8(&bytes[..digits])
        .ok()
        .and_then(|s| s.parse().ok());
    (value, &bytes[digits..])
}

/// Standard base64 with padding (RFC 4648), for the digest Lambda shows.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `5.7 MB`, `812 KB`, `93 B`: decimal units, as AWS quotes package limits.
pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        b if b >= 1_000 => format!("{:.0} KB", b as f64 / 1e3),
        b => format!("{b} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest byte string `elf_arch` accepts as a binary for `arch`.
    fn fake_elf(arch: Architecture, tail: &[u8]) -> Vec<u8> {
        let mut bytes = b"\x7fELF\x02\x01\x01".to_vec();
        bytes.resize(18, 0);
        bytes.extend_from_slice(&elf_machine(arch).to_le_bytes());
        bytes.extend_from_slice(tail);
        bytes
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "xtask-package-{}-{name}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir.join("bootstrap.zip")
    }

    #[test]
    fn the_same_binary_gives_the_same_bytes() {
        let binary = fake_elf(Architecture::Arm64, &[7; 4096]);
        let first = zip_bytes(&binary).expect("zip");
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(
            first,
            zip_bytes(&binary).expect("zip"),
            "timestamps leaked in"
        );
        assert_ne!(
            first,
            zip_bytes(&fake_elf(Architecture::X86_64, &[7; 4096])).expect("zip")
        );
    }

    #[test]
    fn a_package_round_trips_with_mode_and_fixed_time() {
        let path = scratch("round-trip");
        let binary = fake_elf(
            Architecture::Arm64,
            b"GLIBC_2.17\0GLIBC_2.34\0GLIBC_2.2.5\0",
        );
        write(&binary, &path).expect("write");
        assert_eq!(read_bootstrap(&path).expect("read"), binary);

        let mut archive =
            ZipArchive::new(std::fs::File::open(&path).expect("open")).expect("archive");
        let entry = archive.by_index(0).expect("entry");
        assert_eq!(entry.name().expect("name"), ENTRY);
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
        assert_eq!(entry.last_modified(), Some(DateTime::default()));
        assert_eq!(entry.compression(), CompressionMethod::Deflated);
        drop(entry);

        let inspection = inspect(&path).expect("inspect");
        assert_eq!(inspection.arch, Architecture::Arm64);
        assert_eq!(inspection.glibc, Some(GlibcVersion(2, 34)));
        assert_eq!(inspection.binary_bytes, binary.len() as u64);
        assert_eq!(inspection.sha256_hex.len(), 64);
        assert!(!path.with_extension("zip.partial").exists());
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[test]
    fn a_missing_package_says_how_to_build_it() {
        let path = scratch("missing").with_file_name("absent.zip");
        let err = inspect(&path).expect_err("missing").to_string();
        assert!(err.contains("cargo xtask build"), "{err}");
    }

    #[test]
    fn a_zip_with_other_entries_is_refused() {
        let path = scratch("layout");
        let mut writer = ZipWriter::new(std::fs::File::create(&path).expect("create"));
        writer
            .start_file("handler", SimpleFileOptions::default())
            .expect("entry");
        writer.write_all(b"x").expect("write");
        writer.finish().expect("finish");
        let err = inspect(&path).expect_err("layout").to_string();
        assert!(err.contains(r#"["handler"]"#), "{err}");
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[test]
    fn elf_machine_decides_the_architecture() {
        assert_eq!(
            elf_arch(&fake_elf(Architecture::X86_64, &[])).expect("elf"),
            Architecture::X86_64
        );
        assert!(matches!(
            elf_arch(b"#!/bin/sh\n"),
            Err(PackageError::NotElf)
        ));
        let mut riscv = fake_elf(Architecture::Arm64, &[]);
        riscv[18] = 0xF3;
        assert!(matches!(
            elf_arch(&riscv),
            Err(PackageError::UnknownMachine(0xF3))
        ));
    }

    #[test]
    fn glibc_versions_compare_numerically() {
        assert_eq!(
            max_glibc(b"GLIBC_2.9\0GLIBC_2.28\0GLIBC_PRIVATE\0GLIBC_2.3.4"),
            Some(GlibcVersion(2, 28))
        );
        assert_eq!(max_glibc(b"no versions here"), None);
        assert!(GlibcVersion(2, 35) > LAMBDA_GLIBC);
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }
}
