//! A JSON body read as it streams in, with large base64 file contents sent to disk.
//!
//! Owns: [`BodySpooler`], a small JSON lexer that copies the body into a buffer except for
//! the string at `file.data` (every media send, pictures) or a top-level `data` (the
//! conversion routes) once it passes [`INLINE_MAX`]: that string is JSON-unescaped and fed
//! to a [`media::spool::Spooler`] chunk by chunk, and the buffer gets a random placeholder
//! instead, which `model::send::FileData` turns back into the file while the buffer is
//! deserialized. Used by [`super::Body`], once per JSON request, for the request's length.
//!
//! The lexer only tracks nesting, keys and strings; it never rejects anything. Malformed
//! JSON still reaches `serde_json`, which words the syntax error.

use std::sync::Arc;

use crate::media::spool::{self, Spooler};

/// Strings up to this size stay in the JSON (most pictures and voice notes are smaller).
pub const INLINE_MAX: usize = 64 * 1024;

/// Where a file's base64 text may be: `file.data`, or `data` at the top level.
fn is_file_data(path: &[Option<&[u8]>]) -> bool {
    matches!(path, [Some(b"file"), Some(b"data")] | [Some(b"data")])
}

enum Frame {
    /// `key`: the current member's name (capped; only short names are ever matched).
    Object {
        key: Option<Vec<u8>>,
        want_key: bool,
    },
    Array,
}

enum Lex {
    /// Between tokens (numbers and literals are copied as they come).
    Outside,
    /// Inside a string that is copied (a key, or an ordinary value).
    Copy { key: bool, escaped: bool },
    /// Inside a `file.data` string: held until [`INLINE_MAX`], then spooled.
    Data { escaped: bool },
}

/// Longest key kept for matching.
const KEY_MAX: usize = 16;

/// See the module documentation.
pub struct BodySpooler {
    out: Vec<u8>,
    stack: Vec<Frame>,
    lex: Lex,
    /// The raw (still escaped) text of the current `file.data` string while it is small.
    held: Vec<u8>,
    spooler: Option<(Spooler, Unescape)>,
    files: spool::Files,
    failed: Option<std::io::Error>,
}

impl Default for BodySpooler {
    fn default() -> Self {
        Self::new()
    }
}

impl BodySpooler {
    /// An empty body.
    #[must_use]
    pub fn new() -> Self {
        Self {
            out: Vec::new(),
            stack: Vec::new(),
            lex: Lex::Outside,
            held: Vec::new(),
            spooler: None,
            files: Vec::new(),
            failed: None,
        }
    }

    /// Reads the next piece of the body.
    pub fn feed(&mut self, mut chunk: &[u8]) {
        while !chunk.is_empty() {
            match self.lex {
                Lex::Data { escaped } => {
                    // Fast path: everything up to the next quote or backslash is content.
                    let n = if escaped {
                        1
                    } else {
                        chunk
                            .iter()
                            .position(|&b| b == b'"' || b == b'\\')
                            .unwrap_or(chunk.len())
                    };
                    if n == 0 {
                        let b = chunk[0];
                        chunk = &chunk[1..];
                        if b == b'"' {
                            self.end_data();
                        } else {
                            self.lex = Lex::Data { escaped: true };
                            self.content(&[b]);
                        }
                        continue;
                    }
                    let (content, rest) = chunk.split_at(n);
                    self.lex = Lex::Data { escaped: false };
                    self.content(content);
                    chunk = rest;
                }
                Lex::Outside | Lex::Copy { .. } => {
                    let b = chunk[0];
                    chunk = &chunk[1..];
                    self.byte(b);
                }
            }
        }
    }

    /// One byte outside a `file.data` string.
    fn byte(&mut self, b: u8) {
        match &mut self.lex {
            Lex::Copy { key, escaped } => {
                self.out.push(b);
                if *escaped {
                    *escaped = false;
                } else if b == b'\\' {
                    *escaped = true;
                } else if b == b'"' {
                    self.lex = Lex::Outside;
                } else if *key
                    && let Some(Frame::Object { key: Some(k), .. }) = self.stack.last_mut()
                    && k.len() <= KEY_MAX
                {
                    k.push(b);
                }
            }
            Lex::Outside => match b {
                b'{' => {
                    self.out.push(b);
                    self.stack.push(Frame::Object {
                        key: None,
                        want_key: true,
                    });
                }
                b'[' => {
                    self.out.push(b);
                    self.stack.push(Frame::Array);
                }
                b'}' | b']' => {
                    self.out.push(b);
                    self.stack.pop();
                }
                b':' => {
                    self.out.push(b);
                    if let Some(Frame::Object { want_key, .. }) = self.stack.last_mut() {
                        *want_key = false;
                    }
                }
                b',' => {
                    self.out.push(b);
                    if let Some(Frame::Object { key, want_key }) = self.stack.last_mut() {
                        *key = None;
                        *want_key = true;
                    }
                }
                b'"' => {
                    let as_key = match self.stack.last_mut() {
                        Some(Frame::Object {
                            key,
                            want_key: true,
                        }) => {
                            *key = Some(Vec::new());
                            true
                        }
                        _ => false,
                    };
                    if !as_key && self.at_file_data() {
                        self.lex = Lex::Data { escaped: false };
                        self.held.clear();
                    } else {
                        self.out.push(b);
                        self.lex = Lex::Copy {
                            key: as_key,
                            escaped: false,
                        };
                    }
                }
                _ => self.out.push(b),
            },
            Lex::Data { .. } => unreachable!("handled by feed"),
        }
    }

    fn at_file_data(&self) -> bool {
        let mut path: Vec<Option<&[u8]>> = Vec::with_capacity(self.stack.len());
        for frame in &self.stack {
            match frame {
                Frame::Object { key, .. } => path.push(key.as_deref()),
                Frame::Array => return false,
            }
        }
        is_file_data(&path)
    }

    /// Raw (escaped) characters of a `file.data` string.
    fn content(&mut self, raw: &[u8]) {
        if let Some((spooler, unescape)) = &mut self.spooler {
            unescape.feed(raw, spooler);
            return;
        }
        self.held.extend_from_slice(raw);
        if self.held.len() > INLINE_MAX {
            match Spooler::new() {
                Ok(mut spooler) => {
                    let mut unescape = Unescape::default();
                    unescape.feed(&self.held, &mut spooler);
                    self.held = Vec::new();
                    self.spooler = Some((spooler, unescape));
                }
                Err(e) => {
                    // Keep reading (the body must be drained); the parse reports it.
                    self.failed.get_or_insert(e);
                    self.held.clear();
                }
            }
        }
    }

    /// The closing quote of a `file.data` string.
    fn end_data(&mut self) {
        self.lex = Lex::Outside;
        match self.spooler.take() {
            None => {
                self.out.push(b'"');
                self.out.append(&mut self.held);
                self.out.push(b'"');
            }
            Some((spooler, _)) => match spooler.finish() {
                Ok(file) => {
                    let placeholder = spool::placeholder();
                    // The placeholder's NUL is written escaped: a raw one is not JSON.
                    let json = serde_json::to_string(&placeholder).unwrap_or_default();
                    self.out.extend_from_slice(json.as_bytes());
                    self.files.push((placeholder, Arc::new(file)));
                }
                Err(e) => {
                    self.failed.get_or_insert(e);
                    self.out.extend_from_slice(b"\"\"");
                }
            },
        }
    }

    /// The JSON to parse (with placeholders) and the spooled files they name.
    ///
    /// # Errors
    /// A temp file could not be written.
    pub fn finish(mut self) -> std::io::Result<(Vec<u8>, spool::Files)> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if let Lex::Data { .. } = self.lex {
            // Unterminated: give serde the text back so it reports the syntax error.
            self.out.push(b'"');
            self.out.append(&mut self.held);
        }
        Ok((self.out, self.files))
    }
}

/// JSON string escapes undone on the way to the spooler (`\/` is common: PHP escapes
/// slashes, and base64 has them).
#[derive(Default)]
struct Unescape {
    state: Esc,
    buf: Vec<u8>,
}

#[derive(Default)]
enum Esc {
    #[default]
    Plain,
    Backslash,
    /// `\u` and the hex digits read so far.
    Unicode(u32, u8),
}

impl Unescape {
    fn feed(&mut self, raw: &[u8], spooler: &mut Spooler) {
        self.buf.clear();
        for &b in raw {
            match self.state {
                Esc::Plain if b == b'\\' => self.state = Esc::Backslash,
                Esc::Plain => self.buf.push(b),
                Esc::Backslash => {
                    self.state = Esc::Plain;
                    match b {
                        b'u' => self.state = Esc::Unicode(0, 0),
                        b'n' => self.buf.push(b'\n'),
                        b'r' => self.buf.push(b'\r'),
                        b't' => self.buf.push(b'\t'),
                        // `"`, `\`, `/` stand for themselves; `\b`, `\f` are not base64
                        // and make the spooler flag the text as invalid.
                        other => self.buf.push(other),
                    }
                }
                Esc::Unicode(value, digits) => {
                    let digit = (b as char).to_digit(16).unwrap_or(0);
                    let value = value * 16 + digit;
                    if digits == 3 {
                        self.state = Esc::Plain;
                        // Only ASCII can be base64; anything else poisons the text.
                        self.buf
                            .push(u8::try_from(value).ok().filter(u8::is_ascii).unwrap_or(0));
                    } else {
                        self.state = Esc::Unicode(value, digits + 1);
                    }
                }
            }
        }
        spooler.feed(&self.buf);
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    fn run(body: &[u8], cut: usize) -> (serde_json::Value, spool::Files) {
        let mut s = BodySpooler::new();
        let (a, b) = body.split_at(cut.min(body.len()));
        s.feed(a);
        s.feed(b);
        let (json, files) = s.finish().unwrap();
        (serde_json::from_slice(&json).unwrap(), files)
    }

    #[test]
    fn small_data_stays_inline_and_the_rest_is_copied() {
        let body = br#"{"chatId":"1@c.us","file":{"mimetype":"a/b","data":"aGk="},"n":[1,{"data":"x"}],"s":"q\"{"}"#;
        for cut in 0..body.len() {
            let (v, files) = run(body, cut);
            assert!(files.is_empty());
            assert_eq!(
                v,
                serde_json::from_slice::<serde_json::Value>(body).unwrap()
            );
        }
    }

    #[test]
    fn large_file_data_is_spooled_with_escapes_undone() {
        let raw: Vec<u8> = (0..100_000u32).map(|i| (i % 256) as u8).collect();
        let text = base64::engine::general_purpose::STANDARD.encode(&raw);
        let escaped = text.replace('/', "\\/");
        let body = format!(
            r#"{{"session":"default","file":{{"mimetype":"video/mp4","data":"{escaped}","filename":"v.mp4"}},"caption":"c"}}"#
        );
        for cut in [1, 40, 70_000, body.len() - 3] {
            let (v, files) = run(body.as_bytes(), cut);
            assert_eq!(files.len(), 1);
            let (placeholder, file) = &files[0];
            assert_eq!(v["file"]["data"], serde_json::json!(placeholder));
            assert_eq!(v["file"]["filename"], "v.mp4");
            assert_eq!(v["caption"], "c");
            assert!(!file.is_invalid());
            assert_eq!(std::fs::read(file.path()).unwrap(), raw);
        }
    }

    #[test]
    fn only_file_data_and_top_level_data_are_spooled() {
        let big = "A".repeat(INLINE_MAX + 8);
        for body in [
            format!(r#"{{"text":"{big}"}}"#),
            format!(r#"{{"x":{{"data":"{big}"}}}}"#),
            format!(r#"{{"file":[{{"data":"{big}"}}]}}"#),
        ] {
            let (v, files) = run(body.as_bytes(), 5);
            assert!(files.is_empty(), "{}", &body[..20]);
            assert_eq!(v, serde_json::from_str::<serde_json::Value>(&body).unwrap());
        }
        let (_, files) = run(format!(r#"{{"data":"{big}"}}"#).as_bytes(), 5);
        assert_eq!(files.len(), 1);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        for body in [
            &b"{\"file\":{\"data\":\"abc"[..],
            b"}}]]\"",
            b"{\"file\":{\"data\":\"\\u00",
            b"[\"data\"",
        ] {
            let mut s = BodySpooler::new();
            s.feed(body);
            let _ = s.finish();
        }
    }
}
