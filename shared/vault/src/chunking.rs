//! Content-defined chunking with FastCDC (the 2020 variant).
//!
//! Small chunks make deduplication fine-grained: a 1 MB attachment shared
//! by ten otherwise different messages is stored about once, because only
//! the chunks straddling its edges differ. Chunks are 4 KiB to 128 KiB,
//! 16 KiB on average.
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
//! headers, text and HTML parts stay together in one or two chunks. The
//! streaming chunker sees such content only whole (it cuts nothing before
//! it holds twice [`MAX_SIZE`]), so both still agree.

use fastcdc::v2020::FastCDC;

pub const MIN_SIZE: usize = 4 * 1024;
pub const AVG_SIZE: usize = 16 * 1024;
pub const MAX_SIZE: usize = 128 * 1024;
/// An anchor cuts only this far past the previous cut.
pub const ANCHOR_MIN: usize = 64;
/// Content shorter than this is cut without anchors. At most twice
/// [`MAX_SIZE`], so that [`StreamChunker`] never cuts such content in part.
pub const ANCHORED_FROM: usize = 64 * 1024;
const _: () = assert!(ANCHORED_FROM <= 2 * MAX_SIZE);

/// Cut `data` into chunks (an empty input has none).
pub fn split(data: &[u8]) -> Vec<&[u8]> {
    let anchored = data.len() >= ANCHORED_FROM;
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < data.len() {
        let end = anchored
            .then(|| next_anchor(data, start))
            .flatten()
            .unwrap_or(data.len());
        let part = &data[start..end];
        chunks.extend(
            FastCDC::new(part, MIN_SIZE as u32, AVG_SIZE as u32, MAX_SIZE as u32)
                .map(|c| &part[c.offset..c.offset + c.length]),
        );
        start = end;
    }
    chunks
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
/// bytes since the previous cut, so every chunk but the last of the buffer
/// is final once the buffer holds at least [`MAX_SIZE`] bytes.
#[derive(Debug, Default)]
pub struct StreamChunker {
    buffer: Vec<u8>,
}

impl StreamChunker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add bytes; returns the chunks that are now final.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() < 2 * MAX_SIZE {
            return Vec::new();
        }
        let mut cuts: Vec<(usize, usize)> = Vec::new();
        let mut start = 0;
        for chunk in split(&self.buffer) {
            cuts.push((start, chunk.len()));
            start += chunk.len();
        }
        // Keep the last chunk: more bytes may move its end.
        cuts.pop();
        let done: usize = cuts.iter().map(|(_, len)| len).sum();
        let out = cuts
            .into_iter()
            .map(|(offset, len)| self.buffer[offset..offset + len].to_vec())
            .collect();
        self.buffer.drain(..done);
        out
    }

    /// The remaining chunks, at the end of the content.
    pub fn finish(self) -> Vec<Vec<u8>> {
        split(&self.buffer)
            .into_iter()
            .map(<[u8]>::to_vec)
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

    #[test]
    fn chunks_are_bounded_and_cover_the_input() {
        let data = pseudo_random(3_000_000, 7);
        let chunks = split(&data);
        assert!(chunks.len() > 50);
        assert!(chunks.iter().all(|c| c.len() <= MAX_SIZE));
        assert!(chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c.len() >= MIN_SIZE));
        assert_eq!(chunks.concat(), data);
        assert!(split(&[]).is_empty());
    }

    #[test]
    fn streaming_finds_the_same_cuts_whatever_the_piece_sizes() {
        let data = pseudo_random(1_500_000, 11);
        let whole: Vec<Vec<u8>> = split(&data).into_iter().map(<[u8]>::to_vec).collect();
        for piece in [1usize, 4093, 65_536, 1_000_000] {
            let mut chunker = StreamChunker::new();
            let mut out = Vec::new();
            for p in data.chunks(piece) {
                out.extend(chunker.push(p));
            }
            out.extend(chunker.finish());
            assert_eq!(out, whole, "pieces of {piece}");
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
        let ca: std::collections::HashSet<&[u8]> = split(&a).into_iter().collect();
        let new: usize = split(&b)
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
            let mut chunker = StreamChunker::new();
            let mut out = Vec::new();
            for p in b.chunks(piece) {
                out.extend(chunker.push(p));
            }
            out.extend(chunker.finish());
            let whole: Vec<Vec<u8>> = split(&b).into_iter().map(<[u8]>::to_vec).collect();
            assert_eq!(out, whole, "pieces of {piece}");
        }
    }

    #[test]
    fn a_small_message_is_not_cut_at_its_part_edges() {
        let small = mime("From: a@example.com\r\nSubject: short", "b1", &[b'x'; 3000]);
        assert!(small.len() < MIN_SIZE * 2);
        assert_eq!(split(&small), vec![small.as_slice()], "one chunk");
        let large = mime(
            "From: a@example.com\r\nSubject: long",
            "b1",
            &[b'x'; 70_000],
        );
        assert!(split(&large).len() > 3, "parts cut apart in a large one");
    }

    #[test]
    fn a_shared_block_yields_shared_chunks_at_any_offset() {
        let block = pseudo_random(1_000_000, 3);
        let a = [pseudo_random(10_000, 1), block.clone()].concat();
        let b = [pseudo_random(77_777, 2), block].concat();
        let ca: std::collections::HashSet<&[u8]> = split(&a).into_iter().collect();
        let shared: usize = split(&b)
            .into_iter()
            .filter(|c| ca.contains(c))
            .map(<[u8]>::len)
            .sum();
        assert!(shared > 900_000, "only {shared} bytes deduplicated");
    }
}
