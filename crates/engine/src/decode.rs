//! Response bodies sent with a `Content-Encoding` (gzip, br, zstd, deflate, and stacks of
//! them), decoded as they are read: what the checks and a stream's reader see is the
//! decoded body. Each piece read off the wire is pushed through the decoders at once and
//! every decoded piece handed on, at most [`OUT`] bytes at a time, so memory stays
//! bounded whatever the body expands to (a decompression bomb is read to its end and
//! counted, never held); what is kept for the checks is bounded by the caller.
//!
//! Not here: which responses are decoded (`Prepared::keep`), what is kept (the client's
//! sink), or what a failure to decode means (the target's `protocol_error`, `client`).

use std::io::Write as _;

use brotli_decompressor::{BrotliDecompressStream, BrotliResult, BrotliState, StandardAlloc};
use flate2::{Decompress, FlushDecompress, Status};

/// Most decoded bytes handed on at once.
const OUT: usize = 16 * 1024;
/// Most codings in one `Content-Encoding` stack.
const MAX_STACK: usize = 4;

/// One content coding loadgate decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    Gzip,
    Deflate,
    Br,
    Zstd,
}

/// A response's `Content-Encoding`, in the order the server applied the codings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Codings {
    stack: [Option<Coding>; MAX_STACK],
    len: u8,
    /// A coding loadgate does not decode (or more than [`MAX_STACK`]).
    unknown: bool,
}

impl Codings {
    /// No coding: the body is as sent.
    pub(crate) const IDENTITY: Codings = Codings {
        stack: [None; MAX_STACK],
        len: 0,
        unknown: false,
    };

    /// Adds the codings of one `Content-Encoding` field value (a field may repeat).
    pub(crate) fn add(&mut self, value: &[u8]) {
        for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            let coding = match token.to_ascii_lowercase().as_slice() {
                b"" | b"identity" => continue,
                b"gzip" | b"x-gzip" => Coding::Gzip,
                b"deflate" => Coding::Deflate,
                b"br" => Coding::Br,
                b"zstd" => Coding::Zstd,
                _ => {
                    self.unknown = true;
                    continue;
                }
            };
            match self.stack.get_mut(self.len as usize) {
                Some(slot) => {
                    *slot = Some(coding);
                    self.len += 1;
                }
                None => self.unknown = true,
            }
        }
    }

    /// Whether the body is encoded at all.
    pub(crate) fn any(&self) -> bool {
        self.len > 0 || self.unknown
    }

    /// Decoders for this stack, the last coding applied first; `Err` when one is not
    /// decoded here.
    pub(crate) fn decoder(&self) -> Result<Decoder, DecodeError> {
        if self.unknown {
            return Err(DecodeError("a content-encoding loadgate does not decode"));
        }
        let stages = self.stack[..self.len as usize]
            .iter()
            .rev()
            .flatten()
            .map(|&c| Stage::new(c))
            .collect();
        Ok(Decoder { stages })
    }
}

/// Why a body could not be decoded: the target sent data its `Content-Encoding` does
/// not describe (corrupt, truncated, or a coding not decoded here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the response body could not be decoded: {0}")]
pub(crate) struct DecodeError(pub(crate) &'static str);

/// A stack of decoders, fed the body as it is read.
pub(crate) struct Decoder {
    stages: Vec<Stage>,
}

impl Decoder {
    /// Decodes `input`, the next bytes of the body, handing each decoded piece to `out`.
    pub(crate) fn push(
        &mut self,
        input: &[u8],
        out: &mut dyn FnMut(&[u8]),
    ) -> Result<(), DecodeError> {
        push(&mut self.stages, input, out)
    }

    /// The body ended: hands on what the decoders still hold, and fails when a coded
    /// stream was cut short.
    pub(crate) fn finish(&mut self, out: &mut dyn FnMut(&[u8])) -> Result<(), DecodeError> {
        finish(&mut self.stages, out)
    }
}

fn push(stages: &mut [Stage], input: &[u8], out: &mut dyn FnMut(&[u8])) -> Result<(), DecodeError> {
    let Some((first, rest)) = stages.split_first_mut() else {
        out(input);
        return Ok(());
    };
    let mut failed = None;
    first.push(input, &mut |piece| {
        if failed.is_none() {
            failed = push(rest, piece, out).err();
        }
    })?;
    failed.map_or(Ok(()), Err)
}

fn finish(stages: &mut [Stage], out: &mut dyn FnMut(&[u8])) -> Result<(), DecodeError> {
    let Some((first, rest)) = stages.split_first_mut() else {
        return Ok(());
    };
    let mut failed = None;
    first.finish(&mut |piece| {
        if failed.is_none() {
            failed = push(rest, piece, out).err();
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    finish(rest, out)
}

/// One coding's decoder.
enum Stage {
    /// gzip, every member: flate2's writer, whose output is taken after each write (at
    /// most its 32 KiB buffer).
    Gzip(Box<flate2::write::MultiGzDecoder<Vec<u8>>>),
    /// `deflate`: zlib (RFC 9110), or raw deflate as some servers send it; decided by the
    /// first two bytes.
    Deflate {
        inflate: Option<Box<Decompress>>,
        head: Vec<u8>,
        done: bool,
    },
    Br(
        Box<BrotliState<StandardAlloc, StandardAlloc, StandardAlloc>>,
        bool,
    ),
    /// ruzstd decodes whole blocks (at most 128 KiB): input is gathered until one is in.
    Zstd {
        frame: Box<ruzstd::decoding::FrameDecoder>,
        pending: Vec<u8>,
    },
}

impl Stage {
    fn new(c: Coding) -> Stage {
        match c {
            Coding::Gzip => Stage::Gzip(Box::new(flate2::write::MultiGzDecoder::new(Vec::new()))),
            Coding::Deflate => Stage::Deflate {
                inflate: None,
                head: Vec::new(),
                done: false,
            },
            Coding::Br => Stage::Br(
                Box::new(BrotliState::new(
                    StandardAlloc::default(),
                    StandardAlloc::default(),
                    StandardAlloc::default(),
                )),
                false,
            ),
            Coding::Zstd => Stage::Zstd {
                frame: Box::new(ruzstd::decoding::FrameDecoder::new()),
                pending: Vec::new(),
            },
        }
    }

    fn push(&mut self, mut input: &[u8], out: &mut dyn FnMut(&[u8])) -> Result<(), DecodeError> {
        match self {
            Stage::Gzip(gz) => {
                while !input.is_empty() {
                    let n = gz
                        .write(input)
                        .map_err(|_| DecodeError("corrupt gzip data"))?;
                    take(gz.get_mut(), out);
                    if n == 0 {
                        return Err(DecodeError("corrupt gzip data"));
                    }
                    input = &input[n..];
                }
                Ok(())
            }
            Stage::Deflate {
                inflate,
                head,
                done,
            } => {
                if inflate.is_none() {
                    head.extend_from_slice(input);
                    if head.len() < 2 {
                        return Ok(());
                    }
                    let zlib =
                        (head[0] & 0x0f) == 8 && u16::from_be_bytes([head[0], head[1]]) % 31 == 0;
                    *inflate = Some(Box::new(Decompress::new(zlib)));
                    let all = std::mem::take(head);
                    return inflate_into(inflate.as_deref_mut(), done, &all, out);
                }
                inflate_into(inflate.as_deref_mut(), done, input, out)
            }
            Stage::Br(state, done) => brotli(state, done, input, out),
            Stage::Zstd { frame, pending } => {
                pending.extend_from_slice(input);
                zstd(frame, pending, false, out)
            }
        }
    }

    fn finish(&mut self, out: &mut dyn FnMut(&[u8])) -> Result<(), DecodeError> {
        match self {
            Stage::Gzip(gz) => {
                let r = gz.try_finish();
                take(gz.get_mut(), out);
                r.map_err(|_| DecodeError("truncated or corrupt gzip data"))
            }
            Stage::Deflate { done, .. } => match done {
                true => Ok(()),
                false => Err(DecodeError("truncated deflate data")),
            },
            Stage::Br(_, done) => match done {
                true => Ok(()),
                false => Err(DecodeError("truncated brotli data")),
            },
            Stage::Zstd { frame, pending } => zstd(frame, pending, true, out),
        }
    }
}

fn take(buf: &mut Vec<u8>, out: &mut dyn FnMut(&[u8])) {
    if !buf.is_empty() {
        out(buf);
        buf.clear();
    }
}

fn inflate_into(
    inflate: Option<&mut Decompress>,
    done: &mut bool,
    mut input: &[u8],
    out: &mut dyn FnMut(&[u8]),
) -> Result<(), DecodeError> {
    let Some(inflate) = inflate else {
        return Ok(());
    };
    let mut buf = [0u8; OUT];
    while !*done {
        let (before_in, before_out) = (inflate.total_in(), inflate.total_out());
        let status = inflate
            .decompress(input, &mut buf, FlushDecompress::None)
            .map_err(|_| DecodeError("corrupt deflate data"))?;
        let used = (inflate.total_in() - before_in) as usize;
        let made = (inflate.total_out() - before_out) as usize;
        input = &input[used..];
        out(&buf[..made]);
        *done = status == Status::StreamEnd;
        if used == 0 && made == 0 {
            break;
        }
    }
    if *done && !input.is_empty() {
        return Err(DecodeError("data after the end of the deflate stream"));
    }
    Ok(())
}

fn brotli(
    state: &mut BrotliState<StandardAlloc, StandardAlloc, StandardAlloc>,
    done: &mut bool,
    input: &[u8],
    out: &mut dyn FnMut(&[u8]),
) -> Result<(), DecodeError> {
    if *done {
        return match input.is_empty() {
            true => Ok(()),
            false => Err(DecodeError("data after the end of the brotli stream")),
        };
    }
    let mut buf = [0u8; OUT];
    let (mut available_in, mut input_offset) = (input.len(), 0);
    let mut total = 0;
    loop {
        let (mut available_out, mut output_offset) = (OUT, 0);
        let r = BrotliDecompressStream(
            &mut available_in,
            &mut input_offset,
            input,
            &mut available_out,
            &mut output_offset,
            &mut buf,
            &mut total,
            state,
        );
        out(&buf[..output_offset]);
        match r {
            BrotliResult::NeedsMoreOutput => continue,
            BrotliResult::NeedsMoreInput => return Ok(()),
            BrotliResult::ResultSuccess => {
                *done = true;
                return match available_in {
                    0 => Ok(()),
                    _ => Err(DecodeError("data after the end of the brotli stream")),
                };
            }
            BrotliResult::ResultFailure => return Err(DecodeError("corrupt brotli data")),
        }
    }
}

/// Decodes the whole blocks gathered in `pending`; at the `end`, what is left must be
/// none of a frame.
fn zstd(
    frame: &mut ruzstd::decoding::FrameDecoder,
    pending: &mut Vec<u8>,
    end: bool,
    out: &mut dyn FnMut(&[u8]),
) -> Result<(), DecodeError> {
    if !started(frame) {
        // A frame header is at most 18 bytes: wait for it, unless the body ended.
        match zstd_window(pending) {
            None if !end && pending.len() < 18 => return Ok(()),
            None => return Err(DecodeError("corrupt zstd data")),
            Some(w) if w > MAX_ZSTD_WINDOW => {
                return Err(DecodeError("a zstd window over 8 MiB (RFC 8878)"))
            }
            Some(_) => {}
        }
    }
    let mut buf = [0u8; OUT];
    loop {
        let (used, made) = frame
            .decode_from_to(pending, &mut buf)
            .map_err(|_| DecodeError("corrupt zstd data"))?;
        if used > pending.len() {
            // The frame's end waits for its 4-byte checksum, not all here yet (ruzstd
            // then says it read 4).
            break;
        }
        pending.drain(..used);
        out(&buf[..made]);
        if used == 0 && made == 0 {
            break;
        }
    }
    if end && (!frame.is_finished() || !pending.is_empty()) {
        return Err(DecodeError("truncated or corrupt zstd data"));
    }
    Ok(())
}

/// Whether the zstd frame's header has been read.
fn started(frame: &ruzstd::decoding::FrameDecoder) -> bool {
    frame.bytes_read_from_source() > 0
}

/// The largest zstd window decoded: what RFC 8878 (section 7.2) lets HTTP's `zstd`
/// coding use, so that a response holds at most this much history in memory.
const MAX_ZSTD_WINDOW: u64 = 8 << 20;

/// The window a zstd frame header at the start of `h` asks for; `None` when `h` does
/// not hold a whole header or is no zstd frame.
fn zstd_window(h: &[u8]) -> Option<u64> {
    if h.get(..4)? != [0x28, 0xb5, 0x2f, 0xfd] {
        return None;
    }
    let fhd = *h.get(4)?;
    let single = fhd & 0x20 != 0;
    if !single {
        let wd = *h.get(5)?;
        let base = 1u64 << (10 + (wd >> 3));
        return Some(base + base / 8 * u64::from(wd & 7));
    }
    // Single segment: the window is the frame's content size.
    let dict = [0, 1, 2, 4][usize::from(fhd & 3)];
    let at = 5 + dict;
    let size = [1, 2, 4, 8][usize::from(fhd >> 6)];
    let field = h.get(at..at + size)?;
    let mut v = [0u8; 8];
    v[..size].copy_from_slice(field);
    let n = u64::from_le_bytes(v);
    Some(if size == 2 { n + 256 } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(codings: &str, body: &[u8], piece: usize) -> Result<Vec<u8>, DecodeError> {
        let mut c = Codings::IDENTITY;
        c.add(codings.as_bytes());
        let mut d = c.decoder()?;
        let mut all = Vec::new();
        for p in body.chunks(piece.max(1)) {
            d.push(p, &mut |o| all.extend_from_slice(o))?;
        }
        d.finish(&mut |o| all.extend_from_slice(o))?;
        Ok(all)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn br(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
        w.write_all(data).unwrap();
        drop(w);
        out
    }

    fn zstd_of(data: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
    }

    #[test]
    fn each_coding_and_a_stack_decode_in_any_pieces() {
        let text: Vec<u8> = (0..50_000u32)
            .flat_map(|i| format!("{i},").into_bytes())
            .collect();
        let zlib = {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&text).unwrap();
            e.finish().unwrap()
        };
        let raw = {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&text).unwrap();
            e.finish().unwrap()
        };
        for piece in [1, 7, 1000, usize::MAX] {
            assert_eq!(
                decode("gzip", &gzip(&text), piece).unwrap(),
                text,
                "{piece}"
            );
            assert_eq!(decode("deflate", &zlib, piece).unwrap(), text);
            assert_eq!(decode("deflate", &raw, piece).unwrap(), text);
            assert_eq!(decode("br", &br(&text), piece).unwrap(), text);
            assert_eq!(decode("zstd", &zstd_of(&text), piece).unwrap(), text);
            // gzip applied first, then br: br is undone first.
            assert_eq!(decode("gzip, br", &br(&gzip(&text)), piece).unwrap(), text);
        }
    }

    #[test]
    fn corrupt_and_truncated_bodies_fail() {
        let text = b"hello hello hello hello".repeat(100);
        let mut bad = gzip(&text);
        let n = bad.len();
        bad[n / 2] ^= 0xff;
        bad[n - 6] ^= 0xff;
        assert!(decode("gzip", &bad, 100).is_err());
        let good = gzip(&text);
        assert!(decode("gzip", &good[..good.len() - 4], 100).is_err());
        let b = br(&text);
        assert!(decode("br", &b[..b.len() / 2], 100).is_err());
        let z = zstd_of(&text);
        assert!(decode("zstd", &z[..z.len() - 3], 100).is_err());
        assert!(decode("zstd", b"not zstd at all, not at all", 100).is_err());
        assert!(decode("compress", b"x", 100).is_err());
    }
}
