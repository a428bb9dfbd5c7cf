//! Content-defined chunking with FastCDC (the 2020 variant).
//!
//! Small chunks make deduplication fine-grained: a 1 MB block shared by ten
//! otherwise different files is stored about once, because only the chunks
//! straddling its edges differ. How small depends on the workload
//! ([`Sizes::of`]):
//!
//! - files and events: 4 KiB to 128 KiB, 16 KiB on average;
//! - mail: 8 KiB to 128 KiB, 32 KiB on average. What mail shares is whole
//!   MIME parts (the same attachment, the same newsletter in many
//!   mailboxes), which the anchors below find at any chunk size, and every
//!   chunk costs the index two rows, two foreign-key checks and a lookup:
//!   at 16 KiB a 100 KB message made seven chunks, and those rows were most
//!   of PostgreSQL's work in a mail backup. Mail never shares bytes with a
//!   file (an attachment is base64 in its message), so the two sizes lose
//!   nothing to each other.
//!
//! Content is first cut at MIME part edges, then by FastCDC within each
//! part: a cut falls right after a blank line (`\r\n\r\n`, where a part's
//! body starts) and right after `\r\n--` (where a boundary line starts),
//! when at least [`ANCHOR_MIN`] bytes have passed since the previous cut.
//! So an attachment's body is chunked the same way in every message that
//! carries it, whatever its headers and boundary strings, and is stored
//! once. Both anchors look only backwards, so a cut still depends only on
//! the bytes since the previous one, which [`StreamChunker`] relies on.
//!
//! Content under [`ANCHORED_FROM`] is cut by FastCDC alone: a small message
//! holds nothing worth sharing, and every chunk costs index rows, so its
//! headers, text and HTML parts stay together in one or two chunks.
//!
//! Past its first [`LARGE_FROM`] bytes, content of any workload is cut into
//! larger chunks ([`Sizes::LARGE`]) and without MIME anchors. At 16 KiB a
//! 1 GiB file made 65,000 chunks, and PostgreSQL spent more CPU on their
//! rows than the worker did on the file. Mail and most documents lie wholly
//! below the threshold; a large file still deduplicates whole against
//! itself (in another drive, or its next version), and an edit in it costs
//! a few 128 KiB chunks. The large chunks stay under one chunk message's
//! worth, so a worker's prefetch still bounds its memory.

use arkiv_domain::Workload;
use bytes::{Bytes, BytesMut};
use fastcdc::v2020::FastCDC;

/// FastCDC's minimum, average and maximum chunk sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    pub min: usize,
    pub avg: usize,
    pub max: usize,
}

impl Sizes {
    pub const FILES: Sizes = Sizes {
        min: 4 * 1024,
        avg: 16 * 1024,
        max: MAX_SIZE,
    };
    pub const MAIL: Sizes = Sizes {
        min: 8 * 1024,
        avg: 32 * 1024,
        max: MAX_SIZE,
    };
    /// Past [`LARGE_FROM`].
    pub const LARGE: Sizes = Sizes {
        min: 64 * 1024,
        avg: 128 * 1024,
        max: 256 * 1024,
    };

    /// The sizes a workload's content is cut into, up to [`LARGE_FROM`].
    pub fn of(workload: Workload) -> Sizes {
        match workload {
            Workload::Mail => Sizes::MAIL,
            _ => Sizes::FILES,
        }
    }

    fn chunker<'a>(&self, data: &'a [u8]) -> FastCDC<'a> {
        FastCDC::new(data, self.min as u32, self.avg as u32, self.max as u32)
    }
}

/// The largest chunk below [`LARGE_FROM`], whatever the workload.
pub const MAX_SIZE: usize = 128 * 1024;
/// An anchor cuts only this far past the previous cut.
pub const ANCHOR_MIN: usize = 64;
/// Content shorter than this is cut without anchors. At most twice
/// [`MAX_SIZE`], so that [`StreamChunker`] never cuts such content in part.
pub const ANCHORED_FROM: usize = 64 * 1024;
const _: () = assert!(ANCHORED_FROM <= 2 * MAX_SIZE);
/// A chunk that starts this far into the content or further is cut with
/// [`Sizes::LARGE`].
pub const LARGE_FROM: u64 = 8 * 1024 * 1024;
/// The longest chunk of any size.
const LONGEST: usize = Sizes::LARGE.max;
const _: () = assert!(LONGEST >= MAX_SIZE);

/// Cut `data` into chunks of `sizes` (an empty input has none).
pub fn split(data: &[u8], sizes: Sizes) -> Vec<&[u8]> {
    let mut at = 0;
    cut_lengths(data, sizes, 0, data.len() >= ANCHORED_FROM)
        .into_iter()
        .map(|len| {
            at += len;
            &data[at - len..at]
        })
        .collect()
}

/// The lengths of the chunks of `data`, which starts `offset` bytes into
/// its content; `anchored` when the whole content is long enough to be cut
/// at MIME part edges. Each cut is found from the previous one alone (the
/// next anchor is looked for from there, not from the previous anchor), so
/// a stream cut in any pieces gets exactly these cuts.
fn cut_lengths(data: &[u8], sizes: Sizes, offset: u64, anchored: bool) -> Vec<usize> {
    let small = sizes.chunker(data);
    // Made only for content that reaches the threshold (each chunker
    // copies its hash tables).
    let mut large = None;
    let mut lengths = Vec::new();
    let mut start = 0;
    // The first anchor at least ANCHOR_MIN past `start` (the end of the data
    // when there is none), found once and kept while it stays that.
    let mut anchor = None;
    while start < data.len() {
        let end = if offset + (start as u64) >= LARGE_FROM {
            let large = large.get_or_insert_with(|| Sizes::LARGE.chunker(data));
            large.cut(start, data.len() - start).1
        } else {
            let limit = match anchor {
                _ if !anchored => data.len(),
                Some(a) if a >= start + ANCHOR_MIN => a,
                _ => *anchor.insert(next_anchor(data, start).unwrap_or(data.len())),
            };
            small.cut(start, limit - start).1
        };
        lengths.push(end - start);
        start = end;
    }
    lengths
}

/// The first anchor at least [`ANCHOR_MIN`] bytes after `start`: the end
/// of a `\r\n\r\n` or of a `\r\n--`.
fn next_anchor(data: &[u8], start: usize) -> Option<usize> {
    // The earliest cut is `start + ANCHOR_MIN`, so an anchor's four bytes
    // begin at `start + ANCHOR_MIN - 4` or later.
    let scan = start + ANCHOR_MIN - 4;
    if scan >= data.len() {
        return None;
    }
    memchr::memchr_iter(b'\r', &data[scan..])
        .map(|i| scan + i)
        .find(|&i| matches!(data.get(i..i + 4), Some(b"\r\n\r\n" | b"\r\n--")))
        .map(|i| i + 4)
}

/// Chunks content that arrives in pieces, with exactly the cut points
/// [`split`] would find on the whole. A FastCDC cut depends only on the
/// bytes since the previous cut (and on where the chunk starts, for its
/// sizes), so every chunk but the last of the buffer is final.
///
/// Chunks are handed out as [`Bytes`] of the buffer the content was read
/// into, without copying: read with [`StreamChunker::buffer`], then
/// [`StreamChunker::cut`].
#[derive(Debug)]
pub struct StreamChunker {
    buffer: BytesMut,
    sizes: Sizes,
    /// Where `buffer` starts in the content.
    offset: u64,
}

impl StreamChunker {
    pub fn new(sizes: Sizes) -> Self {
        Self {
            buffer: BytesMut::new(),
            sizes,
            offset: 0,
        }
    }

    /// The buffer to read more content into (at its end), with room for at
    /// least `room` bytes more.
    pub fn buffer(&mut self, room: usize) -> &mut BytesMut {
        self.buffer.reserve(room);
        &mut self.buffer
    }

    /// Bytes held and not yet cut.
    pub fn len(&self) -> usize {
        self.buffer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }

    /// Everything held, uncut: content too small to be chunked.
    pub fn into_bytes(self) -> Bytes {
        self.buffer.freeze()
    }

    /// Add bytes; returns the chunks that are now final.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Bytes> {
        self.buffer.extend_from_slice(bytes);
        self.cut()
    }

    /// The chunks that are final, once the buffer holds enough to cut
    /// (twice the longest chunk, so that the content is known to be long
    /// enough for anchors and most of the buffer is cut at once).
    pub fn cut(&mut self) -> Vec<Bytes> {
        if self.buffer.len() < 2 * LONGEST {
            return Vec::new();
        }
        let mut lengths = cut_lengths(&self.buffer, self.sizes, self.offset, true);
        // Keep the last chunk: more bytes may move its end.
        lengths.pop();
        self.take(lengths)
    }

    /// The remaining chunks, at the end of the content.
    pub fn finish(mut self) -> Vec<Bytes> {
        let anchored = self.offset + self.buffer.len() as u64 >= ANCHORED_FROM as u64;
        let lengths = cut_lengths(&self.buffer, self.sizes, self.offset, anchored);
        self.take(lengths)
    }

    fn take(&mut self, lengths: Vec<usize>) -> Vec<Bytes> {
        lengths
            .into_iter()
            .map(|len| {
                self.offset += len as u64;
                self.buffer.split_to(len).freeze()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    const BOTH: [Sizes; 2] = [Sizes::FILES, Sizes::MAIL];

    /// `data` pushed through a [`StreamChunker`] in pieces of `piece`.
    fn streamed(data: &[u8], sizes: Sizes, piece: usize) -> Vec<Bytes> {
        let mut chunker = StreamChunker::new(sizes);
        let mut out = Vec::new();
        for p in data.chunks(piece) {
            out.extend(chunker.push(p));
        }
        out.extend(chunker.finish());
        out
    }

    #[test]
    fn chunks_are_bounded_and_cover_the_input() {
        let data = pseudo_random(3_000_000, 7);
        for sizes in BOTH {
            let chunks = split(&data, sizes);
            let expected = data.len() / sizes.avg;
            assert!(
                chunks.len() > expected / 2 && chunks.len() < expected * 2,
                "{} chunks of {sizes:?}",
                chunks.len()
            );
            assert!(chunks.iter().all(|c| c.len() <= sizes.max));
            assert!(chunks[..chunks.len() - 1]
                .iter()
                .all(|c| c.len() >= sizes.min));
            assert_eq!(chunks.concat(), data);
            assert!(split(&[], sizes).is_empty());
        }
    }

    #[test]
    fn streaming_finds_the_same_cuts_whatever_the_piece_sizes() {
        let data = pseudo_random(1_500_000, 11);
        for sizes in BOTH {
            for piece in [1usize, 4093, 65_536, 1_000_000] {
                let whole = split(&data, sizes);
                assert_eq!(streamed(&data, sizes, piece), whole, "pieces of {piece}");
            }
        }
    }

    fn mime(headers: &str, boundary: &str, body: &[u8]) -> Vec<u8> {
        let mut m = format!(
            "{headers}\r\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        )
        .into_bytes();
        m.extend_from_slice(body);
        m.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        m
    }

    #[test]
    fn an_attachment_chunks_alike_in_every_message_that_carries_it() {
        use base64::Engine as _;
        let raw = pseudo_random(1_000_000, 5);
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        let body: Vec<u8> = b64
            .as_bytes()
            .chunks(76)
            .flat_map(|l| [l, b"\r\n"].concat())
            .collect();
        let a = mime("From: a@example.com\r\nSubject: one", "b1-xyz", &body);
        let b = mime(
            "From: someone.else@example.com\r\nSubject: a different subject line",
            "another-boundary-0042",
            &body,
        );
        let mail = Sizes::of(Workload::Mail);
        let ca: std::collections::HashSet<&[u8]> = split(&a, mail).into_iter().collect();
        let new: usize = split(&b, mail)
            .into_iter()
            .filter(|c| !ca.contains(c))
            .map(<[u8]>::len)
            .sum();
        assert!(
            new < 2_000,
            "{new} bytes of the second message are not shared"
        );
        // And streaming finds the same cuts.
        for piece in [3usize, 1000, 70_000] {
            let whole = split(&b, mail);
            assert_eq!(streamed(&b, mail, piece), whole, "pieces of {piece}");
        }
    }

    #[test]
    fn a_small_message_is_not_cut_at_its_part_edges() {
        let mail = Sizes::of(Workload::Mail);
        let small = mime("From: a@example.com\r\nSubject: short", "b1", &[b'x'; 3000]);
        assert!(small.len() < mail.min * 2);
        assert_eq!(split(&small, mail), vec![small.as_slice()], "one chunk");
        let large = mime(
            "From: a@example.com\r\nSubject: long",
            "b1",
            &[b'x'; 70_000],
        );
        assert!(
            split(&large, mail).len() > 3,
            "parts cut apart in a large one"
        );
    }

    #[test]
    fn a_shared_block_yields_shared_chunks_at_any_offset() {
        let block = pseudo_random(1_000_000, 3);
        let a = [pseudo_random(10_000, 1), block.clone()].concat();
        let b = [pseudo_random(77_777, 2), block].concat();
        let files = Sizes::of(Workload::Drive);
        let ca: std::collections::HashSet<&[u8]> = split(&a, files).into_iter().collect();
        let shared: usize = split(&b, files)
            .into_iter()
            .filter(|c| ca.contains(c))
            .map(<[u8]>::len)
            .sum();
        assert!(shared > 900_000, "only {shared} bytes deduplicated");
    }

    #[test]
    fn past_the_threshold_chunks_are_large_and_streaming_agrees() {
        let data = pseudo_random(LARGE_FROM as usize + 6_000_000, 13);
        let chunks = split(&data, Sizes::FILES);
        assert_eq!(chunks.concat(), data);
        let mut at = 0u64;
        let (mut small, mut large) = (0, 0);
        for (i, c) in chunks.iter().enumerate() {
            let last = i + 1 == chunks.len();
            if at < LARGE_FROM {
                assert!(c.len() <= MAX_SIZE);
                small += 1;
            } else {
                assert!(c.len() <= Sizes::LARGE.max);
                assert!(last || c.len() >= Sizes::LARGE.min);
                large += 1;
            }
            at += c.len() as u64;
        }
        assert!(small > 300 && large > 20, "{small} small, {large} large");
        let mean = (data.len() as u64 - LARGE_FROM) / large;
        assert!(mean > 100_000, "large chunks average {mean} bytes");
        for piece in [7_777usize, 262_144, 3_000_000] {
            assert_eq!(
                streamed(&data, Sizes::FILES, piece),
                chunks,
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn a_large_file_with_bytes_inserted_near_its_start_still_shares_its_tail() {
        let file = pseudo_random(20_000_000, 17);
        let edited = [&file[..1000], b"inserted".as_slice(), &file[1000..]].concat();
        let before: std::collections::HashSet<&[u8]> =
            split(&file, Sizes::FILES).into_iter().collect();
        let new: usize = split(&edited, Sizes::FILES)
            .into_iter()
            .filter(|c| !before.contains(c))
            .map(<[u8]>::len)
            .sum();
        assert!(new < 1_000_000, "{new} bytes of the edited file are new");
    }

    /// An anchor a few bytes after a cut, and a stream whose pieces make
    /// the chunker keep the chunk from that cut unfinished: the cuts are
    /// still those of the whole. (When anchors were looked for from the
    /// previous anchor rather than from the previous cut, the whole was cut
    /// at that anchor and the stream was not.)
    #[test]
    fn an_anchor_just_after_a_cut_is_cut_alike_whatever_the_pieces() {
        let zeros = 1_200_000;
        for sizes in BOTH {
            // Zeros are cut at fixed steps: put an anchor 30 bytes past a
            // cut well inside them.
            let mut data = pseudo_random(zeros, 29);
            data.extend(vec![0u8; 3 * MAX_SIZE]);
            data.extend(pseudo_random(700_000, 19));
            let cuts = |data: &[u8]| -> Vec<usize> {
                let mut at = 0;
                split(data, sizes)
                    .iter()
                    .map(|c| {
                        at += c.len();
                        at
                    })
                    .collect()
            };
            let cut = *cuts(&data)
                .iter()
                .find(|&&c| c > zeros + 2 * MAX_SIZE)
                .unwrap();
            data[cut + 26..cut + 30].copy_from_slice(b"\r\n\r\n");
            let whole = split(&data, sizes);
            // The chunker cuts once it holds 2 * LONGEST: first when it ends
            // just past a cut `from`, then when it ends just past `cut`, so
            // that the chunk from `cut` is the one it keeps.
            let end = cut + 1;
            let from = *cuts(&data)
                .iter()
                .rev()
                .find(|&&c| c + 2 * LONGEST <= end)
                .unwrap();
            let mut chunker = StreamChunker::new(sizes);
            let mut out = chunker.push(&data[..from + 1]);
            out.extend(chunker.push(&data[from + 1..end]));
            for piece in data[end..].chunks(100_000) {
                out.extend(chunker.push(piece));
            }
            out.extend(chunker.finish());
            assert_eq!(out, whole, "{sizes:?}");
        }
    }
}
