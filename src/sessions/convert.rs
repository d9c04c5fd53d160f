//! Media conversion with `ffmpeg`, an external process (WAHA makes the same choice and its
//! Docker image ships it): any audio → OGG/Opus voice note with its duration and waveform,
//! any video → MP4/H.264 + AAC that WhatsApp plays inline.
//!
//! Owns: the `ffmpeg` command lines, the waveform computation (decoded PCM streamed from
//! ffmpeg's stdout, never held whole) and the failure modes — ffmpeg missing (a clear error
//! naming it), input it cannot read (bad input), or a run over [`CONVERT_TIMEOUT`] (the
//! process is killed, never a hang). Called by `sessions::sending` for `convert: true` and
//! by the `media/convert` routes; every process is a child of the call and is killed when
//! the call is dropped (`kill_on_drop`). Outputs are temp files removed when dropped.

use std::{path::Path, process::Stdio, time::Duration};

use tokio::{io::AsyncReadExt, process::Command};

use super::sending::MediaError;

/// The longest one conversion may run.
pub const CONVERT_TIMEOUT: Duration = Duration::from_secs(300);

/// Samples in a WhatsApp voice-note waveform.
const WAVEFORM_SAMPLES: usize = 64;

/// A converted file.
#[derive(Debug)]
pub struct Converted {
    /// The output, removed when dropped.
    pub path: tempfile::TempPath,
    /// Its MIME type.
    pub mimetype: &'static str,
    /// Duration in seconds (voice notes).
    pub seconds: Option<u32>,
    /// 64 samples, 0–100 (voice notes).
    pub waveform: Option<Vec<u8>>,
}

/// The `ffmpeg` executable, looked up on `PATH`.
fn ffmpeg() -> &'static str {
    "ffmpeg"
}

fn out_file(suffix: &str) -> Result<tempfile::TempPath, MediaError> {
    tempfile::Builder::new()
        .prefix("wharf-conv-")
        .suffix(suffix)
        .tempfile()
        .map(tempfile::NamedTempFile::into_temp_path)
        .map_err(|e| MediaError::Disk(e.to_string()))
}

/// Runs ffmpeg with `args`; its stdout goes to `stdout` (when given), else nowhere.
async fn run(args: &[&std::ffi::OsStr]) -> Result<(), MediaError> {
    let mut child = Command::new(ffmpeg())
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_error)?;
    let mut stderr = child.stderr.take();
    let work = async {
        let mut err = String::new();
        if let Some(s) = stderr.as_mut() {
            // Bounded: ffmpeg at `-loglevel error` writes a few lines.
            let _ = s.take(64 * 1024).read_to_string(&mut err).await;
        }
        let status = child.wait().await;
        (status, err)
    };
    match tokio::time::timeout(CONVERT_TIMEOUT, work).await {
        Ok((Ok(status), _)) if status.success() => Ok(()),
        Ok((Ok(_), err)) => Err(MediaError::Unconvertible(last_line(&err))),
        Ok((Err(e), _)) => Err(MediaError::Unconvertible(e.to_string())),
        Err(_) => Err(MediaError::Unconvertible(format!(
            "ffmpeg did not finish within {CONVERT_TIMEOUT:?}"
        ))),
    }
}

fn spawn_error(e: std::io::Error) -> MediaError {
    if e.kind() == std::io::ErrorKind::NotFound {
        MediaError::FfmpegMissing
    } else {
        MediaError::Unconvertible(format!("cannot start ffmpeg: {e}"))
    }
}

fn last_line(stderr: &str) -> String {
    stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("ffmpeg failed")
        .trim()
        .to_string()
}

/// A small JPEG preview (the image itself, or a video's first frame, at most 96 px wide)
/// for the message's inline thumbnail. `None` when ffmpeg is missing or cannot read the
/// file: the message then goes without one, as it did before.
pub async fn thumbnail(input: &Path) -> Option<Vec<u8>> {
    let out = out_file(".jpg").ok()?;
    run(&[
        "-i".as_ref(),
        input.as_os_str(),
        "-frames:v".as_ref(),
        "1".as_ref(),
        "-vf".as_ref(),
        "scale='min(96,iw)':-2".as_ref(),
        "-q:v".as_ref(),
        "6".as_ref(),
        "-f".as_ref(),
        "image2".as_ref(),
        "-c:v".as_ref(),
        "mjpeg".as_ref(),
        out.as_os_str(),
    ])
    .await
    .ok()?;
    let bytes = tokio::fs::read(&out).await.ok()?;
    // WhatsApp inlines it in the message: keep it small.
    (!bytes.is_empty() && bytes.len() <= 64 * 1024).then_some(bytes)
}

/// Any audio (or video's sound) → a mono 48 kHz OGG/Opus voice note, with its duration
/// and waveform.
///
/// # Errors
/// ffmpeg missing, the input is not audio, or the run timed out.
pub async fn voice(input: &Path) -> Result<Converted, MediaError> {
    let out = out_file(".ogg")?;
    run(&[
        "-i".as_ref(),
        input.as_os_str(),
        "-vn".as_ref(),
        "-ac".as_ref(),
        "1".as_ref(),
        "-ar".as_ref(),
        "48000".as_ref(),
        "-c:a".as_ref(),
        "libopus".as_ref(),
        "-b:a".as_ref(),
        "32k".as_ref(),
        "-application".as_ref(),
        "voip".as_ref(),
        "-f".as_ref(),
        "ogg".as_ref(),
        out.as_os_str(),
    ])
    .await?;
    let (seconds, waveform) = waveform(&out).await?;
    Ok(Converted {
        path: out,
        mimetype: "audio/ogg; codecs=opus",
        seconds: Some(seconds),
        waveform: Some(waveform),
    })
}

/// Any video → MP4 (H.264 baseline, yuv420p, AAC, `faststart`) that WhatsApp plays inline.
///
/// # Errors
/// ffmpeg missing, the input is not a video, or the run timed out.
pub async fn video(input: &Path) -> Result<Converted, MediaError> {
    let out = out_file(".mp4")?;
    run(&[
        "-i".as_ref(),
        input.as_os_str(),
        "-c:v".as_ref(),
        "libx264".as_ref(),
        "-preset".as_ref(),
        "veryfast".as_ref(),
        "-profile:v".as_ref(),
        "baseline".as_ref(),
        "-pix_fmt".as_ref(),
        "yuv420p".as_ref(),
        // H.264 needs even dimensions.
        "-vf".as_ref(),
        "scale=trunc(iw/2)*2:trunc(ih/2)*2".as_ref(),
        "-c:a".as_ref(),
        "aac".as_ref(),
        "-b:a".as_ref(),
        "128k".as_ref(),
        "-movflags".as_ref(),
        "+faststart".as_ref(),
        "-f".as_ref(),
        "mp4".as_ref(),
        out.as_os_str(),
    ])
    .await?;
    Ok(Converted {
        path: out,
        mimetype: "video/mp4",
        seconds: None,
        waveform: None,
    })
}

/// Duration (s) and waveform of an audio file: ffmpeg decodes it to 8 kHz mono 16-bit PCM
/// on stdout, folded into 100 ms mean amplitudes as it streams, then into 64 samples.
///
/// # Errors
/// ffmpeg missing or unable to decode the file.
pub async fn waveform(audio: &Path) -> Result<(u32, Vec<u8>), MediaError> {
    const RATE: usize = 8000;
    const BLOCK: usize = RATE / 10;
    let mut child = Command::new(ffmpeg())
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i"])
        .arg(audio)
        .args(["-ac", "1", "-ar", "8000", "-f", "s16le", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_error)?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| MediaError::Unconvertible("ffmpeg gave no output".into()))?;
    let work = async {
        let mut blocks: Vec<f32> = Vec::new();
        let (mut sum, mut n, mut total) = (0f64, 0usize, 0usize);
        let mut buf = vec![0u8; 16 * 1024];
        let mut carry: Option<u8> = None;
        loop {
            let read = stdout.read(&mut buf).await.map_err(|e| e.to_string())?;
            if read == 0 {
                break;
            }
            let mut bytes = &buf[..read];
            let mut pair = [0u8; 2];
            if let Some(lo) = carry.take() {
                pair[0] = lo;
                pair[1] = bytes[0];
                bytes = &bytes[1..];
                sum += f64::from(i16::from_le_bytes(pair).unsigned_abs());
                n += 1;
                total += 1;
            }
            let mut chunks = bytes.chunks_exact(2);
            for s in &mut chunks {
                sum += f64::from(i16::from_le_bytes([s[0], s[1]]).unsigned_abs());
                n += 1;
                total += 1;
                if n == BLOCK {
                    blocks.push((sum / n as f64) as f32);
                    (sum, n) = (0.0, 0);
                }
            }
            carry = chunks.remainder().first().copied();
        }
        if n > 0 {
            blocks.push((sum / n as f64) as f32);
        }
        let status = child.wait().await.map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("ffmpeg could not decode the converted audio".to_string());
        }
        Ok((total, blocks))
    };
    let (total, blocks) = match tokio::time::timeout(CONVERT_TIMEOUT, work).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(MediaError::Unconvertible(e)),
        Err(_) => {
            return Err(MediaError::Unconvertible(format!(
                "ffmpeg did not finish within {CONVERT_TIMEOUT:?}"
            )));
        }
    };
    let seconds = u32::try_from(total.div_ceil(RATE)).unwrap_or(u32::MAX);
    Ok((seconds, fold(&blocks)))
}

/// 64 samples (0–100) from per-block amplitudes, normalised to the loudest.
fn fold(blocks: &[f32]) -> Vec<u8> {
    if blocks.is_empty() {
        return vec![0; WAVEFORM_SAMPLES];
    }
    let samples: Vec<f32> = (0..WAVEFORM_SAMPLES)
        .map(|i| {
            let start = i * blocks.len() / WAVEFORM_SAMPLES;
            let end = ((i + 1) * blocks.len() / WAVEFORM_SAMPLES).max(start + 1);
            let part = &blocks[start.min(blocks.len() - 1)..end.min(blocks.len())];
            part.iter().sum::<f32>() / part.len().max(1) as f32
        })
        .collect();
    let max = samples.iter().copied().fold(0f32, f32::max);
    samples
        .iter()
        .map(|s| {
            if max > 0.0 {
                (s / max * 100.0).round() as u8
            } else {
                0
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waveform_has_64_samples_scaled_to_the_loudest() {
        let blocks: Vec<f32> = (0..640).map(|i| (i % 64) as f32).collect();
        let w = fold(&blocks);
        assert_eq!(w.len(), 64);
        assert_eq!(w.iter().copied().max(), Some(100));
        assert_eq!(fold(&[]), vec![0; 64]);
        assert_eq!(fold(&[5.0]).len(), 64);
    }

    #[test]
    fn a_missing_ffmpeg_is_named_not_a_conversion_failure() {
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert!(matches!(spawn_error(missing), MediaError::FfmpegMissing));
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(matches!(spawn_error(denied), MediaError::Unconvertible(_)));
    }
}
