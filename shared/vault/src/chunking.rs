//! Content-defined chunking with FastCDC (the 2020 variant).
//!
//! Small chunks make deduplication fine-grained: a 1 MB attachment shared
//! by ten otherwise different messages is stored about once, because only
//! the chunks straddling its edges differ. Chunks are 4 KiB to 128 KiB,
//! 16 KiB on average.

use fastcdc::v2020::FastCDC;

pub const MIN_SIZE: usize = 4 * 1024;
pub const AVG_SIZE: usize = 16 * 1024;
pub const MAX_SIZE: usize = 128 * 1024;

/// Cut `data` into chunks (an empty input has none).
pub fn split(data: &[u8]) -> Vec<&[u8]> {
    if data.is_empty() {
        return Vec::new();
    }
    FastCDC::new(data, MIN_SIZE as u32, AVG_SIZE as u32, MAX_SIZE as u32)
        .map(|c| &data[c.offset..c.offset + c.length])
        .collect()
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
