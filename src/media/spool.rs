//! Base64 uploads decoded to disk while the request body is still arriving.
//!
//! Owns: [`Spooler`] (an incremental base64 decoder writing to a temp file), [`Spooled`]
//! (the decoded file, or why the text was not base64) and the per-parse registry that lets
//! a DTO field ([`crate::model::send::FileData`]) pick up the file its placeholder names.
//! `api::extract` feeds a spooler with the characters of a large `file.data` string as the
//! body streams in and leaves a random placeholder in the JSON it parses; the spooled file
//! lives as long as the request's DTO (its temp file is removed on drop). No actix here.
//!
//! Why: a 50 MB body held whole, then again as a JSON string, then decoded, costs about
//! three times the file in memory; spooled, it costs a few 64 KiB buffers.

use std::{cell::RefCell, io::Write, path::Path, sync::Arc};

use base64::Engine as _;

/// A base64 text decoded into a temp file.
#[derive(Debug)]
pub struct Spooled {
    path: tempfile::TempPath,
    len: u64,
    invalid: bool,
}

/// Two spooled files are the same when they are the same file.
impl PartialEq for Spooled {
    fn eq(&self, other: &Self) -> bool {
        self.path() == other.path()
    }
}

impl Eq for Spooled {}

impl Spooled {
    /// Where the decoded bytes are.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many bytes were decoded.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was decoded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the text was not valid base64 (the file is then incomplete).
    #[must_use]
    pub fn is_invalid(&self) -> bool {
        self.invalid
    }
}

/// Decodes base64 text fed in arbitrary pieces into a temp file. Tolerates what
/// `sessions::sending` tolerates for inline data: a `data:<mime>;base64,` prefix and ASCII
/// whitespace (MIME line breaks).
pub struct Spooler {
    file: std::io::BufWriter<std::fs::File>,
    path: tempfile::TempPath,
    /// Characters not yet decoded (fewer than a block, or the undecided prefix).
    pending: Vec<u8>,
    /// Still looking at the start of the text for a `data:…;base64,` prefix.
    at_start: bool,
    /// A `=` was seen: only more `=` may follow.
    padded: bool,
    len: u64,
    invalid: bool,
    failed: Option<std::io::Error>,
}

/// Base64 characters decoded per step (a multiple of 4).
const BLOCK: usize = 64 * 1024;
/// The longest `data:<mime>;base64,` prefix looked for.
const PREFIX_MAX: usize = 256;

impl Spooler {
    /// A spooler writing into a new temp file.
    ///
    /// # Errors
    /// The temp file cannot be created.
    pub fn new() -> std::io::Result<Self> {
        let (file, path) = tempfile::Builder::new()
            .prefix("wharf-upload-")
            .tempfile()?
            .into_parts();
        Ok(Self {
            file: std::io::BufWriter::with_capacity(BLOCK, file),
            path,
            pending: Vec::with_capacity(BLOCK + 4),
            at_start: true,
            padded: false,
            len: 0,
            invalid: false,
            failed: None,
        })
    }

    /// Feeds the next characters of the text (already JSON-unescaped).
    pub fn feed(&mut self, text: &[u8]) {
        if self.invalid || self.failed.is_some() {
            return;
        }
        for &b in text {
            if b.is_ascii_whitespace() && !self.at_start {
                continue;
            }
            self.pending.push(b);
            if self.at_start {
                self.check_prefix();
                continue;
            }
            if self.padded && b != b'=' {
                self.invalid = true;
                return;
            }
            if b == b'=' {
                self.padded = true;
            }
            if self.pending.len() >= BLOCK && !self.padded {
                self.decode_pending();
                if self.invalid || self.failed.is_some() {
                    return;
                }
            }
        }
    }

    /// While the start is undecided: strips a complete `data:…;base64,` prefix, or decides
    /// there is none.
    fn check_prefix(&mut self) {
        const DATA: &[u8] = b"data:";
        const MARK: &[u8] = b";base64,";
        let p = &self.pending;
        let could_be_prefix = if p.len() < DATA.len() {
            DATA.starts_with(p)
        } else {
            p.starts_with(DATA) && p.len() <= PREFIX_MAX
        };
        if could_be_prefix {
            if p.ends_with(MARK) {
                self.pending.clear();
                self.at_start = false;
            }
            return;
        }
        // No prefix: what was held back is base64 text (whitespace and padding rules apply).
        self.at_start = false;
        let held = std::mem::take(&mut self.pending);
        self.feed(&held);
    }

    fn decode_pending(&mut self) {
        let whole = self.pending.len() - self.pending.len() % 4;
        let take = if self.padded {
            self.pending.len()
        } else {
            whole
        };
        match base64::engine::general_purpose::STANDARD.decode(&self.pending[..take]) {
            Ok(bytes) => {
                self.len += bytes.len() as u64;
                if let Err(e) = self.file.write_all(&bytes) {
                    self.failed = Some(e);
                }
            }
            Err(_) => self.invalid = true,
        }
        self.pending.drain(..take);
    }

    /// Decodes what is left and closes the file.
    ///
    /// # Errors
    /// Writing the temp file failed (bad base64 is not an error here: see
    /// [`Spooled::is_invalid`]).
    pub fn finish(mut self) -> std::io::Result<Spooled> {
        if self.at_start {
            // Shorter than any prefix: plain base64 text.
            self.at_start = false;
            let held = std::mem::take(&mut self.pending);
            self.feed(&held);
        }
        if !self.invalid && self.failed.is_none() && !self.pending.is_empty() {
            self.padded = true;
            self.decode_pending();
        }
        if let Some(e) = self.failed {
            return Err(e);
        }
        self.file.flush()?;
        Ok(Spooled {
            path: self.path,
            len: self.len,
            invalid: self.invalid,
        })
    }
}

/// The prefix of every placeholder; the rest is 128 random bits, so a client cannot name
/// a spooled file it did not upload in the same request.
pub const PLACEHOLDER_PREFIX: &str = "\u{0}wharf-spooled:";

/// A fresh, unguessable placeholder for one spooled text.
#[must_use]
pub fn placeholder() -> String {
    format!("{PLACEHOLDER_PREFIX}{}", uuid::Uuid::new_v4().simple())
}

/// The spooled files of one body, each with the placeholder that names it.
pub type Files = Vec<(String, Arc<Spooled>)>;

thread_local! {
    /// The spooled files of the body being deserialized on this thread (see [`with_files`]).
    static CURRENT: RefCell<Files> = const { RefCell::new(Vec::new()) };
}

/// Runs `parse` (one synchronous deserialization) with `files` visible to [`take`].
pub fn with_files<R>(files: Files, parse: impl FnOnce() -> R) -> R {
    struct Reset(Files);
    impl Drop for Reset {
        fn drop(&mut self) {
            let previous = std::mem::take(&mut self.0);
            CURRENT.with(|c| *c.borrow_mut() = previous);
        }
    }
    let previous = CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), files));
    let _reset = Reset(previous);
    parse()
}

/// The spooled file a placeholder names, during [`with_files`]; `None` for any other text.
#[must_use]
pub fn take(text: &str) -> Option<Arc<Spooled>> {
    if !text.starts_with(PLACEHOLDER_PREFIX) {
        return None;
    }
    CURRENT.with(|c| {
        c.borrow()
            .iter()
            .find(|(p, _)| p == text)
            .map(|(_, f)| f.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spool(pieces: &[&str]) -> (Vec<u8>, bool) {
        let mut s = Spooler::new().unwrap();
        for p in pieces {
            s.feed(p.as_bytes());
        }
        let f = s.finish().unwrap();
        (std::fs::read(f.path()).unwrap(), f.is_invalid())
    }

    #[test]
    fn decodes_across_any_split() {
        let raw: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let text = base64::engine::general_purpose::STANDARD.encode(&raw);
        for cut in [1, 3, 1000, 65_537, text.len() - 1] {
            let (a, b) = text.split_at(cut);
            assert_eq!(spool(&[a, b]), (raw.clone(), false), "cut at {cut}");
        }
    }

    #[test]
    fn prefix_whitespace_and_padding() {
        assert_eq!(
            spool(&["data:image/png;ba", "se64,aGk="]),
            (b"hi".to_vec(), false)
        );
        assert_eq!(spool(&["aGVs\nbG8="]), (b"hello".to_vec(), false));
        assert!(spool(&["da"]).1, "not base64 and no prefix");
        assert!(spool(&["aGk=aGk="]).1, "padding in the middle");
        assert!(spool(&["a*Gk"]).1);
        // As for inline data (and the standard): the last block must be padded.
        assert!(spool(&["dGVzdA"]).1, "unpadded tail");
    }

    #[test]
    fn placeholders_resolve_only_inside_their_parse() {
        let f = Arc::new(Spooler::new().unwrap().finish().unwrap());
        let p = placeholder();
        assert!(take(&p).is_none());
        let found = with_files(vec![(p.clone(), f)], || take(&p).is_some());
        assert!(found);
        assert!(take(&p).is_none());
        assert!(with_files(Vec::new(), || take(&placeholder()).is_none()));
    }
}
