//! Content-addressed blobs under `blobs/sha256/<hex>`.
//!
//! A blob is streamed into a temporary file, hashed on the way, and renamed into place only once its
//! digest is known (and, when the caller named one, matches it). A reader therefore never sees a
//! partial or unverified blob under a digest name, even after a crash.

use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use tempfile::NamedTempFile;

use crate::{Error, Result};

/// The only digest algorithm the store keeps blobs under.
pub(crate) const SHA256_PREFIX: &str = "sha256:";

/// Returns the hex part of `sha256:<64 lowercase hex>`, or `None` for anything else.
pub(crate) fn sha256_hex(digest: &str) -> Option<&str> {
    digest
        .strip_prefix(SHA256_PREFIX)
        .filter(|hex| is_sha256_hex(hex))
}

/// True for exactly 64 lowercase hexadecimal characters: safe to use as a file name.
pub(crate) fn is_sha256_hex(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `sha256:<hex>` of a byte slice.
#[cfg(test)]
pub(crate) fn digest_of(bytes: &[u8]) -> String {
    format!("{SHA256_PREFIX}{}", hex::encode(Sha256::digest(bytes)))
}

/// A reader that hashes (SHA-256) and counts everything read through it.
pub(crate) struct DigestReader<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
}

impl<R> DigestReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        DigestReader {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// The `sha256:<hex>` digest and the length of everything read so far.
    pub(crate) fn finish(self) -> (String, u64) {
        (
            format!("{SHA256_PREFIX}{}", hex::encode(self.hasher.finalize())),
            self.len,
        )
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

/// A blob that is now in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredBlob {
    /// The 64-character hex digest (the file name).
    pub(crate) hex: String,
    pub(crate) size: u64,
}

impl StoredBlob {
    pub(crate) fn digest(&self) -> String {
        format!("{SHA256_PREFIX}{}", self.hex)
    }
}

/// The `blobs/sha256` directory and the scratch directory its writes go through.
#[derive(Debug)]
pub(crate) struct BlobStore {
    dir: PathBuf,
    tmp: PathBuf,
}

impl BlobStore {
    /// `dir` holds the blobs; `tmp` must be on the same filesystem (writes are renamed from there).
    pub(crate) fn new(dir: PathBuf, tmp: PathBuf) -> Self {
        BlobStore { dir, tmp }
    }

    /// The path of blob `hex`. `hex` must already be validated with [`is_sha256_hex`].
    pub(crate) fn path(&self, hex: &str) -> PathBuf {
        self.dir.join(hex)
    }

    pub(crate) fn contains(&self, hex: &str) -> bool {
        fs::symlink_metadata(self.path(hex)).is_ok_and(|m| m.is_file())
    }

    pub(crate) fn size(&self, hex: &str) -> Result<u64> {
        let path = self.path(hex);
        fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|e| Error::io(path, e))
    }

    pub(crate) fn read(&self, hex: &str) -> Result<Vec<u8>> {
        let path = self.path(hex);
        fs::read(&path).map_err(|e| Error::io(path, e))
    }

    /// Streams `reader` into the store and returns the blob's digest and size.
    ///
    /// With `expected` (a hex digest), content that hashes to anything else is discarded and
    /// [`Error::DigestMismatch`] returned. `origin` names where the bytes come from, for errors.
    pub(crate) fn write(
        &self,
        reader: &mut dyn Read,
        expected: Option<&str>,
        origin: &Path,
    ) -> Result<StoredBlob> {
        let mut tmp = NamedTempFile::new_in(&self.tmp).map_err(|e| Error::io(&self.tmp, e))?;
        let mut hashing = DigestReader::new(reader);
        {
            let mut out = BufWriter::with_capacity(256 * 1024, tmp.as_file_mut());
            io::copy(&mut hashing, &mut out)
                .and_then(|_| out.flush())
                .map_err(|e| Error::io(origin, e))?;
        }
        let (digest, size) = hashing.finish();
        let hex = digest[SHA256_PREFIX.len()..].to_string();
        if let Some(expected) = expected {
            if expected != hex {
                return Err(Error::DigestMismatch {
                    expected: format!("{SHA256_PREFIX}{expected}"),
                    actual: digest,
                });
            }
        }
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io(tmp.path(), e))?;
        let dest = self.path(&hex);
        tmp.persist(&dest).map_err(|e| Error::io(&dest, e.error))?;
        Ok(StoredBlob { hex, size })
    }

    /// Stores an in-memory blob (a manifest the store wrote itself).
    pub(crate) fn write_bytes(&self, bytes: &[u8], origin: &Path) -> Result<StoredBlob> {
        let mut reader = bytes;
        self.write(&mut reader, None, origin)
    }

    /// The hex digests of every blob present.
    pub(crate) fn list(&self) -> Result<Vec<String>> {
        let entries = fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            if let Some(name) = entry.file_name().to_str() {
                if is_sha256_hex(name) {
                    out.push(name.to_string());
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn remove(&self, hex: &str) -> Result<()> {
        let path = self.path(hex);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(path, e)),
        }
    }
}
