//! `wharf export SESSION --out FILE` and `wharf import FILE [--as NAME] [--replace]`: one
//! session's complete state (the records of `cli::dump`) in one file, encrypted with a
//! passphrase.
//!
//! Owns: the file format and its crypto. The key is Argon2id(passphrase, random salt)
//! with the cost parameters stored in the header; the body is a sequence of frames, each
//! one batch of records (JSON lines) sealed with XChaCha20-Poly1305 under the nonce
//! `prefix ‖ frame number` with the header as associated data, and a last-frame flag
//! inside the sealed plaintext. So a wrong passphrase, a changed byte, a reordered,
//! dropped or appended frame and a cut-off file all fail authentication. Memory is
//! bounded by one frame (one batch).
//!
//! Export writes `FILE.partial` (mode 0600) and renames it when complete; import reads
//! and authenticates the whole file once before it writes anything, then reads it again
//! to load it. Runs once in its own process (called by `cli::run`).
//!
//! ```text
//! "WHARFBK1" | m_cost u32le | t_cost u32le | p_cost u32le | salt[16] | nonce prefix[16]
//! then frames: len u32le | sealed(flag u8 ‖ JSON lines)      (flag 1 = last frame)
//! ```

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305};

use super::dump::{self, Loader, Record, Sink};
use super::{Args, Failure, StoreSpec, print_counts, progress};
use crate::config::Config;

const MAGIC: &[u8; 8] = b"WHARFBK1";
const HEADER_LEN: usize = 8 + 12 + 16 + 16;
/// Larger frames are refused before allocating (a damaged length field).
const MAX_FRAME: usize = 256 * 1024 * 1024;
/// Argon2id costs (OWASP's minimum for Argon2id: 19 MiB, 2 passes, 1 lane).
const M_COST: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

/// The passphrase: the first line of `--passphrase-file`, else `WHARF_BACKUP_PASSPHRASE`.
/// Never an argument (a command line is visible in `ps`).
fn passphrase(args: &Args) -> Result<String, Failure> {
    let p = match &args.passphrase_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .lines()
            .next()
            .unwrap_or("")
            .to_string(),
        None => std::env::var("WHARF_BACKUP_PASSPHRASE").unwrap_or_default(),
    };
    if p.is_empty() {
        return Err(Failure::Usage(
            "no passphrase: set WHARF_BACKUP_PASSPHRASE or pass --passphrase-file".into(),
        ));
    }
    Ok(p)
}

/// The header, parsed or to write.
struct Header {
    bytes: [u8; HEADER_LEN],
}

impl Header {
    fn new() -> Self {
        let mut bytes = [0u8; HEADER_LEN];
        bytes[..8].copy_from_slice(MAGIC);
        bytes[8..12].copy_from_slice(&M_COST.to_le_bytes());
        bytes[12..16].copy_from_slice(&T_COST.to_le_bytes());
        bytes[16..20].copy_from_slice(&P_COST.to_le_bytes());
        bytes[20..52].copy_from_slice(&rand::random::<[u8; 32]>());
        Self { bytes }
    }

    fn read(r: &mut impl Read) -> anyhow::Result<Self> {
        let mut bytes = [0u8; HEADER_LEN];
        r.read_exact(&mut bytes)
            .context("not a wharf export (too short)")?;
        if &bytes[..8] != MAGIC {
            bail!("not a wharf export (unknown format)");
        }
        Ok(Self { bytes })
    }

    fn cost(&self, at: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.bytes[at..at + 4]);
        u32::from_le_bytes(b)
    }

    fn cipher(&self, passphrase: &str) -> anyhow::Result<XChaCha20Poly1305> {
        let params = argon2::Params::new(self.cost(8), self.cost(12), self.cost(16), Some(32))
            .map_err(|e| anyhow!("bad key derivation parameters in the file: {e}"))?;
        let kdf = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut key = [0u8; 32];
        kdf.hash_password_into(passphrase.as_bytes(), &self.bytes[20..36], &mut key)
            .map_err(|e| anyhow!("key derivation: {e}"))?;
        XChaCha20Poly1305::new_from_slice(&key).map_err(|e| anyhow!("cipher: {e}"))
    }

    fn nonce(&self, frame: u64) -> chacha20poly1305::XNonce {
        let mut n = [0u8; 24];
        n[..16].copy_from_slice(&self.bytes[36..52]);
        n[16..].copy_from_slice(&frame.to_be_bytes());
        n.into()
    }
}

/// Writes sealed frames.
struct FrameWriter {
    out: BufWriter<std::fs::File>,
    header: Header,
    cipher: XChaCha20Poly1305,
    frame: u64,
    counts: dump::Counts,
}

impl FrameWriter {
    fn frame(&mut self, last: bool, body: &[u8]) -> anyhow::Result<()> {
        let mut plain = Vec::with_capacity(body.len() + 1);
        plain.push(u8::from(last));
        plain.extend_from_slice(body);
        let sealed = self
            .cipher
            .encrypt(
                &self.header.nonce(self.frame),
                Payload {
                    msg: &plain,
                    aad: &self.header.bytes,
                },
            )
            .map_err(|_| anyhow!("encryption failed"))?;
        let len = u32::try_from(sealed.len()).context("frame too large")?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&sealed)?;
        self.frame += 1;
        Ok(())
    }
}

impl Sink for FrameWriter {
    async fn put(&mut self, batch: Vec<Record>) -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        dump::count_into(&mut self.counts, &batch);
        let mut body = Vec::new();
        for r in &batch {
            serde_json::to_writer(&mut body, r)?;
            body.push(b'\n');
        }
        self.frame(false, &body)
    }
}

/// Reads and opens frames; `None` after the last one.
struct FrameReader {
    input: BufReader<std::fs::File>,
    header: Header,
    cipher: XChaCha20Poly1305,
    frame: u64,
    done: bool,
}

impl FrameReader {
    fn open(path: &Path, passphrase: &str) -> anyhow::Result<Self> {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut input = BufReader::new(file);
        let header = Header::read(&mut input)?;
        let cipher = header.cipher(passphrase)?;
        Ok(Self {
            input,
            header,
            cipher,
            frame: 0,
            done: false,
        })
    }

    fn next_batch(&mut self) -> anyhow::Result<Option<Vec<Record>>> {
        if self.done {
            return Ok(None);
        }
        let mut len = [0u8; 4];
        self.input
            .read_exact(&mut len)
            .context("the file is cut off (no final frame)")?;
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_FRAME {
            bail!("damaged file (frame {} too large)", self.frame);
        }
        let mut sealed = vec![0u8; len];
        self.input
            .read_exact(&mut sealed)
            .context("the file is cut off")?;
        let plain = self
            .cipher
            .decrypt(
                &self.header.nonce(self.frame),
                Payload {
                    msg: &sealed,
                    aad: &self.header.bytes,
                },
            )
            .map_err(|_| {
                if self.frame == 0 {
                    anyhow!("wrong passphrase, or the file was changed")
                } else {
                    anyhow!("the file was changed or damaged (frame {})", self.frame)
                }
            })?;
        self.frame += 1;
        let (flag, body) = plain.split_first().context("empty frame")?;
        if *flag == 1 {
            self.done = true;
            let mut rest = [0u8; 1];
            if self.input.read(&mut rest)? != 0 {
                bail!("the file has data after its last frame");
            }
        }
        let mut batch = Vec::new();
        for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            batch.push(serde_json::from_slice(line).context("damaged record")?);
        }
        Ok(Some(batch))
    }
}

/// `wharf export SESSION --out FILE [--from STORE]`.
///
/// # Errors
/// Bad arguments, no such session, a store or file failure.
pub async fn export(config: &Config, args: &Args) -> Result<(), Failure> {
    let [session] = args.positional.as_slice() else {
        return Err(Failure::Usage("export takes one SESSION".into()));
    };
    let out = args
        .out
        .clone()
        .ok_or_else(|| Failure::Usage("--out FILE is required".into()))?;
    let pass = passphrase(args)?;
    let from = match &args.from {
        Some(f) => StoreSpec::parse(f, config)?,
        None => StoreSpec::current(config),
    };
    let store = from.open(config, true).await?;
    let name = store
        .session_name(session)
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let partial = PathBuf::from(format!("{}.partial", out.display()));
    let header = Header::new();
    let cipher = header.cipher(&pass)?;
    let mut out_file = BufWriter::new(create_private(&partial)?);
    if let Err(e) = out_file.write_all(&header.bytes) {
        let _ = std::fs::remove_file(&partial);
        return Err(Failure::Failed(e.into()));
    }
    let mut writer = FrameWriter {
        out: out_file,
        header,
        cipher,
        frame: 0,
        counts: dump::Counts::new(),
    };
    let bar = progress(1, "export");
    bar.set_message(session.clone());
    let result = async {
        dump::dump_session(&store, &name, &config.worker_id, &mut writer).await?;
        writer.frame(true, b"")?;
        writer.out.flush()?;
        writer.out.get_ref().sync_all()?;
        std::fs::rename(&partial, &out)?;
        anyhow::Ok(())
    }
    .await;
    bar.finish_and_clear();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(Failure::Failed(e));
    }
    print_counts(session, &writer.counts, None);
    println!("exported session {session:?} to {}", out.display());
    Ok(())
}

/// The file, created for the owner only.
fn create_private(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    opts.open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// `wharf import FILE [--as NAME] [--replace] [--to STORE]`.
///
/// # Errors
/// Bad arguments, a wrong passphrase or damaged file (nothing is written then), the
/// session already exists (without `--replace`), a store failure.
pub async fn import(config: &Config, args: &Args) -> Result<(), Failure> {
    let [file] = args.positional.as_slice() else {
        return Err(Failure::Usage("import takes one FILE".into()));
    };
    let file = PathBuf::from(file);
    let pass = passphrase(args)?;

    // Pass 1: authenticate everything and learn the session's name; nothing is written.
    let mut reader = FrameReader::open(&file, &pass)?;
    let mut original = None;
    let mut counts = dump::Counts::new();
    while let Some(batch) = reader.next_batch()? {
        if original.is_none()
            && let Some(Record::Session { name, .. }) = batch.first()
        {
            original = Some(name.clone());
        }
        dump::count_into(&mut counts, &batch);
    }
    let original = original.ok_or_else(|| anyhow!("the file holds no session"))?;

    let to = match &args.to {
        Some(t) => StoreSpec::parse(t, config)?,
        None => StoreSpec::current(config),
    };
    let store = to.open(config, false).await?;
    let target = args.rename.clone().unwrap_or_else(|| original.clone());
    let name = store
        .session_name(&target)
        .map_err(|e| Failure::Usage(e.to_string()))?;
    if store.get_session(&target).await?.is_some() {
        if !args.replace {
            return Err(Failure::Failed(anyhow!(
                "session {target:?} already exists in the {}: choose another name with --as, \
                 or --replace it",
                to.describe()
            )));
        }
        store.delete_session(&target).await?;
    }

    // Pass 2: load.
    let mut loader = Loader {
        store: &store,
        name,
        keys: target == original,
    };
    let bar = progress(counts.values().sum(), "import");
    bar.set_message(target.clone());
    let mut reader = FrameReader::open(&file, &pass)?;
    while let Some(batch) = reader.next_batch()? {
        let n = batch.len() as u64;
        loader
            .put(batch)
            .await
            .with_context(|| format!("loading session {target:?}"))?;
        bar.inc(n);
    }
    bar.finish_and_clear();
    print_counts(&target, &counts, None);
    println!(
        "imported session {original:?} as {target:?} into the {}",
        to.describe()
    );
    Ok(())
}
