//! Just enough ELF reading to tell a static executable from a dynamic one.
//!
//! An executable is dynamic when it names a program interpreter (a `PT_INTERP` program header,
//! e.g. `/lib64/ld-linux-x86-64.so.2`); without one the kernel runs it directly, which is what an
//! image without shared libraries needs. Static-PIE binaries still have a `PT_DYNAMIC` header for
//! self-relocation but no interpreter, so they count as static, as `ldd` agrees.

use std::path::Path;

use anyhow::{bail, Context};

/// Program header type of the interpreter path.
const PT_INTERP: u32 = 3;

/// How an executable is linked.
#[derive(Debug, PartialEq, Eq)]
pub enum Linkage {
    Static,
    Dynamic { interpreter: String },
}

/// Fails unless `path` is a statically linked 64-bit little-endian ELF executable.
pub fn ensure_static(path: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let linkage =
        linkage(&bytes).map_err(|reason| anyhow::anyhow!("{}: {reason}", path.display()))?;
    if let Linkage::Dynamic { interpreter } = linkage {
        bail!(
            "{} is dynamically linked (program interpreter {interpreter})",
            path.display()
        );
    }
    Ok(())
}

/// Reads the linkage of an ELF64 little-endian image from its program headers.
pub fn linkage(image: &[u8]) -> Result<Linkage, String> {
    if image.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err("not an ELF file".to_owned());
    }
    if image.get(4..6) != Some([2u8, 1].as_slice()) {
        return Err("not a 64-bit little-endian ELF file".to_owned());
    }
    let table = to_usize(read_u64(image, 0x20)?)?;
    let entry_size = usize::from(read_u16(image, 0x36)?);
    let count = usize::from(read_u16(image, 0x38)?);
    for index in 0..count {
        let header = index
            .checked_mul(entry_size)
            .and_then(|offset| offset.checked_add(table))
            .ok_or("program header table out of range")?;
        if read_u32(image, header)? == PT_INTERP {
            let start = to_usize(read_u64(image, header.saturating_add(8))?)?;
            let len = to_usize(read_u64(image, header.saturating_add(32))?)?;
            return Ok(Linkage::Dynamic {
                interpreter: interpreter(image, start, len)?,
            });
        }
    }
    Ok(Linkage::Static)
}

/// The NUL-terminated interpreter path stored at `start..start + len`.
fn interpreter(image: &[u8], start: usize, len: usize) -> Result<String, String> {
    let bytes = start
        .checked_add(len)
        .and_then(|end| image.get(start..end))
        .ok_or("interpreter path out of range")?;
    let path = bytes.split(|&b| b == 0).next().unwrap_or_default();
    Ok(String::from_utf8_lossy(path).into_owned())
}

/// The `N` bytes at offset `at`.
fn field<const N: usize>(image: &[u8], at: usize) -> Result<[u8; N], String> {
    let wanted = N;
    at.checked_add(wanted)
        .and_then(|end| image.get(at..end))
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| format!("truncated ELF file (no {wanted} bytes at offset {at:#x})"))
}

fn read_u16(image: &[u8], at: usize) -> Result<u16, String> {
    field(image, at).map(u16::from_le_bytes)
}

fn read_u32(image: &[u8], at: usize) -> Result<u32, String> {
    field(image, at).map(u32::from_le_bytes)
}

fn read_u64(image: &[u8], at: usize) -> Result<u64, String> {
    field(image, at).map(u64::from_le_bytes)
}

fn to_usize(value: u64) -> Result<usize, String> {
    usize::try_from(value).map_err(|_| format!("offset {value:#x} out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PT_LOAD: u32 = 1;
    const PT_DYNAMIC: u32 = 2;
    const HEADER_SIZE: usize = 64;
    const PHDR_SIZE: usize = 56;

    /// A minimal ELF64 image: the file header, then one program header per type, then `interp`
    /// (pointed at by any `PT_INTERP` header).
    fn fake_elf(types: &[u32], interp: &[u8]) -> Vec<u8> {
        let mut image = vec![0u8; HEADER_SIZE];
        image[..6].copy_from_slice(b"\x7fELF\x02\x01");
        image[0x20..0x28].copy_from_slice(&(HEADER_SIZE as u64).to_le_bytes());
        image[0x36..0x38].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
        image[0x38..0x3a].copy_from_slice(&(types.len() as u16).to_le_bytes());
        let interp_at = (HEADER_SIZE + PHDR_SIZE * types.len()) as u64;
        for &kind in types {
            let mut phdr = [0u8; PHDR_SIZE];
            phdr[..4].copy_from_slice(&kind.to_le_bytes());
            phdr[8..16].copy_from_slice(&interp_at.to_le_bytes());
            phdr[32..40].copy_from_slice(&(interp.len() as u64).to_le_bytes());
            image.extend_from_slice(&phdr);
        }
        image.extend_from_slice(interp);
        image
    }

    #[test]
    fn no_interpreter_is_static() {
        assert_eq!(
            linkage(&fake_elf(&[PT_LOAD, PT_LOAD], b"")),
            Ok(Linkage::Static)
        );
        // static-pie: self-relocating, so PT_DYNAMIC but still no interpreter
        assert_eq!(
            linkage(&fake_elf(&[PT_LOAD, PT_DYNAMIC], b"")),
            Ok(Linkage::Static)
        );
    }

    #[test]
    fn an_interpreter_is_dynamic() {
        let image = fake_elf(
            &[PT_LOAD, PT_INTERP, PT_DYNAMIC],
            b"/lib64/ld-linux-x86-64.so.2\0",
        );
        let interpreter = "/lib64/ld-linux-x86-64.so.2".to_owned();
        assert_eq!(linkage(&image), Ok(Linkage::Dynamic { interpreter }));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(linkage(b"#!/bin/sh\n").is_err());
        assert!(linkage(b"\x7fELF\x01\x01").is_err(), "32-bit");
        let mut truncated = fake_elf(&[PT_LOAD, PT_INTERP], b"/lib/ld.so\0");
        truncated.truncate(HEADER_SIZE + PHDR_SIZE + 10);
        assert!(linkage(&truncated).is_err());
    }

    #[test]
    fn ensure_static_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dynamic");
        std::fs::write(&path, fake_elf(&[PT_INTERP], b"/lib/ld.so\0")).expect("write");
        let err = ensure_static(&path).expect_err("dynamic").to_string();
        assert!(
            err.contains("dynamic") && err.contains("/lib/ld.so"),
            "{err}"
        );
    }
}
