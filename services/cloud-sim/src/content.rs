//! Item content: stored bytes, or generated on demand from a seed so that
//! large datasets (a bench of 40,000 messages, a 20 MB file) cost no memory
//! and are byte-identical on every request.

use std::sync::{Arc, OnceLock};

use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use md5::Digest;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Debug)]
pub enum Content {
    Stored(Bytes),
    /// `len` pseudo-random bytes from `seed`; incompressible, like the
    /// archives, images and PDFs that fill real drives.
    Random {
        seed: u64,
        len: u64,
    },
    /// A MIME message rendered from its parts.
    Mail(Arc<MailSpec>),
}

impl Content {
    pub fn stored(bytes: impl Into<Bytes>) -> Self {
        Content::Stored(bytes.into())
    }

    pub fn len(&self) -> u64 {
        match self {
            Content::Stored(b) => b.len() as u64,
            Content::Random { len, .. } => *len,
            Content::Mail(spec) => spec.rendered().len() as u64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn bytes(&self) -> Bytes {
        match self {
            Content::Stored(b) => b.clone(),
            Content::Random { seed, len } => random_range(*seed, 0, *len),
            Content::Mail(spec) => spec.rendered().clone(),
        }
    }

    /// Bytes `start..end` (end exclusive, clamped to the length).
    pub fn range(&self, start: u64, end: u64) -> Bytes {
        let end = end.min(self.len());
        if start >= end {
            return Bytes::new();
        }
        match self {
            Content::Random { seed, .. } => random_range(*seed, start, end),
            other => other.bytes().slice(start as usize..end as usize),
        }
    }

    pub fn hashes(&self) -> Hashes {
        Hashes::of(&self.bytes())
    }
}

/// `start..end` of the stream of `seed`, without generating what precedes it.
fn random_range(seed: u64, start: u64, end: u64) -> Bytes {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // ChaCha positions are in 32-bit words.
    rng.set_word_pos(u128::from(start / 4));
    let skip = (start % 4) as usize;
    let mut buf = vec![0u8; (end - start) as usize + skip];
    rng.fill_bytes(&mut buf);
    Bytes::from(buf).slice(skip..)
}

/// The hashes providers publish for file content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hashes {
    /// OneDrive for Business: base64 of the 160-bit QuickXorHash.
    pub quick_xor: String,
    pub sha1_hex: String,
    pub sha256_hex: String,
    /// Google Drive: hex MD5.
    pub md5_hex: String,
}

impl Hashes {
    pub fn of(bytes: &[u8]) -> Self {
        let mut qx = quickxorhash::QuickXorHash::new();
        qx.update(bytes);
        Self {
            quick_xor: base64::engine::general_purpose::STANDARD.encode(qx.finalize()),
            sha1_hex: hex::encode(sha1::Sha1::digest(bytes)),
            sha256_hex: hex::encode(sha2::Sha256::digest(bytes)),
            md5_hex: hex::encode(md5::Md5::digest(bytes)),
        }
    }
}

/// A mail message described by its parts; rendered once, on first use.
/// Its text is kept already quoted-printable, encoded when the message is
/// made: encoding it on the first request made the simulator the busiest
/// process of a mail backup benchmark.
#[derive(Debug)]
pub struct MailSpec {
    pub message_id: String,
    pub from: (String, String),
    pub to: Vec<(String, String)>,
    pub subject: String,
    pub date: DateTime<Utc>,
    body_qp: String,
    pub attachment: Option<Attachment>,
    rendered: OnceLock<Bytes>,
}

#[derive(Debug)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    pub content: Content,
}

impl MailSpec {
    pub fn new(
        message_id: String,
        from: (String, String),
        to: Vec<(String, String)>,
        subject: String,
        date: DateTime<Utc>,
        body: String,
        attachment: Option<Attachment>,
    ) -> Self {
        Self {
            message_id,
            from,
            to,
            subject,
            date,
            body_qp: quoted_printable(&body),
            attachment,
            rendered: OnceLock::new(),
        }
    }

    pub fn rendered(&self) -> &Bytes {
        self.rendered.get_or_init(|| Bytes::from(self.render()))
    }

    /// RFC 5322 with MIME: CRLF line ends, encoded words for non-ASCII
    /// headers, quoted-printable text, base64 attachments at 76 columns,
    /// and a boundary derived from the Message-ID so renders are identical.
    fn render(&self) -> Vec<u8> {
        let mut out = String::new();
        let address = |(name, addr): &(String, String)| {
            if name.is_empty() {
                format!("<{addr}>")
            } else {
                format!("{} <{addr}>", encode_word(name))
            }
        };
        let host = self.from.1.split('@').nth(1).unwrap_or("example.com");
        out.push_str(&format!(
            "Received: from mail.{host} ([192.0.2.10]) by mx.example.net with ESMTPS; {}\r\n",
            self.date.to_rfc2822()
        ));
        out.push_str(&format!("From: {}\r\n", address(&self.from)));
        let to: Vec<String> = self.to.iter().map(address).collect();
        out.push_str(&format!("To: {}\r\n", to.join(",\r\n ")));
        out.push_str(&format!("Subject: {}\r\n", encode_word(&self.subject)));
        out.push_str(&format!("Date: {}\r\n", self.date.to_rfc2822()));
        out.push_str(&format!("Message-ID: {}\r\n", self.message_id));
        out.push_str("MIME-Version: 1.0\r\n");
        let text_part = format!(
            "Content-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{}",
            self.body_qp
        );
        match &self.attachment {
            None => out.push_str(&text_part),
            Some(attachment) => {
                let digest = hex::encode(&sha2::Sha256::digest(self.message_id.as_bytes())[..12]);
                let boundary = format!("=_arkiv_sim_{digest}");
                out.push_str(&format!(
                    "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
                ));
                out.push_str("This is a multi-part message in MIME format.\r\n\r\n");
                out.push_str(&format!("--{boundary}\r\n{text_part}\r\n--{boundary}\r\n"));
                out.push_str(&format!(
                    "Content-Type: {}; name=\"{}\"\r\nContent-Disposition: attachment; filename=\"{}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
                    attachment.content_type,
                    encode_word(&attachment.name),
                    encode_word(&attachment.name)
                ));
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(attachment.content.bytes());
                for line in encoded.as_bytes().chunks(76) {
                    out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
                    out.push_str("\r\n");
                }
                out.push_str(&format!("--{boundary}--\r\n"));
            }
        }
        out.into_bytes()
    }
}

/// RFC 2047 encoded word when a header value is not plain ASCII.
fn encode_word(text: &str) -> String {
    if text.is_ascii() && !text.contains(['"', '\r', '\n']) {
        text.to_owned()
    } else {
        format!(
            "=?utf-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
        )
    }
}

/// Quoted-printable (RFC 2045) with soft line breaks at 76 columns.
/// Runs of bytes that need no escape are copied whole: the bench dataset
/// renders tens of thousands of bodies, and byte-at-a-time output was the
/// simulator's main cost while a benchmark ran.
fn quoted_printable(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(text.len() + text.len() / 16);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        let bytes = line.trim_end_matches('\r').as_bytes();
        let literal = |j: usize| {
            let b = bytes[j];
            (b == b' ' && j + 1 != bytes.len()) || (b.is_ascii_graphic() && b != b'=')
        };
        let (mut column, mut j) = (0, 0);
        while j < bytes.len() {
            // As many literal bytes as fit on this output line.
            let mut end = j;
            while end < bytes.len() && column + (end - j) < 75 && literal(end) {
                end += 1;
            }
            if end > j {
                out.extend_from_slice(&bytes[j..end]);
                column += end - j;
                j = end;
                continue;
            }
            // The line is full, or this byte must be escaped.
            let width = if literal(j) { 1 } else { 3 };
            if column + width > 75 {
                out.extend_from_slice(b"=\r\n");
                column = 0;
                continue;
            }
            let b = bytes[j];
            out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            column += 3;
            j += 1;
        }
    }
    String::from_utf8(out).expect("quoted-printable is ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ranges_match_the_whole_stream() {
        let content = Content::Random {
            seed: 7,
            len: 10_000,
        };
        let all = content.bytes();
        assert_eq!(all.len(), 10_000);
        for (start, end) in [
            (0, 1),
            (1, 7),
            (4093, 5001),
            (9_999, 10_000),
            (9_000, 20_000),
        ] {
            assert_eq!(
                content.range(start, end),
                all.slice(start as usize..end.min(10_000) as usize)
            );
        }
        assert_eq!(
            Content::Random { seed: 7, len: 10 }.bytes(),
            all.slice(..10)
        );
    }

    #[test]
    fn quick_xor_hash_matches_published_vectors() {
        // Vectors from rclone's QuickXorHash tests.
        let b64 = base64::engine::general_purpose::STANDARD;
        for (input, expected) in [
            ("", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            ("Sg==", "SgAAAAAAAAAAAAAAAQAAAAAAAAA="),
            ("jRRDVA==", "jaDAEKgAAAAAAAAABAAAAAAAAAA="),
            ("qaApEj66lw==", "qQBFCiTgA11cAgAABwAAAAAAAAA="),
        ] {
            let data = b64.decode(input).unwrap();
            assert_eq!(Hashes::of(&data).quick_xor, expected, "input {input}");
        }
    }

    #[test]
    fn quoted_printable_wraps_at_76_and_escapes_what_it_must() {
        let text = format!("{} café = fin \nnext line ", "word ".repeat(40));
        let encoded = quoted_printable(&text);
        assert!(encoded.split("\r\n").all(|l| l.len() <= 76), "{encoded}");
        assert!(encoded.contains("caf=C3=A9 =3D fin=20\r\nnext line=20"));
        let unwrapped = encoded.replace("=\r\n", "");
        assert!(unwrapped.starts_with(&"word ".repeat(40)));
        for text in [
            text.as_str(),
            "=".repeat(80).as_str(),
            "a \r\n\n\u{e9}\u{e9} x ",
            "",
        ] {
            assert_eq!(quoted_printable(text), byte_at_a_time(text), "{text:?}");
        }
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..300 {
            let text: String = (0..rng.next_u32() % 400)
                .map(|_| ['a', ' ', '=', '\n', '\r', '\u{e9}', 'x'][rng.next_u32() as usize % 7])
                .collect();
            assert_eq!(quoted_printable(&text), byte_at_a_time(&text), "{text:?}");
        }
    }

    /// RFC 2045 quoted-printable the plain way, one byte at a time.
    fn byte_at_a_time(text: &str) -> String {
        let mut out = String::new();
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                out.push_str("\r\n");
            }
            let bytes = line.trim_end_matches('\r').as_bytes();
            let mut column = 0;
            for (j, &b) in bytes.iter().enumerate() {
                let last = j + 1 == bytes.len();
                let literal = (b == b' ' && !last) || (b.is_ascii_graphic() && b != b'=');
                let piece = if literal {
                    (b as char).to_string()
                } else {
                    format!("={b:02X}")
                };
                if column + piece.len() > 75 {
                    out.push_str("=\r\n");
                    column = 0;
                }
                column += piece.len();
                out.push_str(&piece);
            }
        }
        out
    }

    #[test]
    fn mail_renders_identically_and_parses() {
        let spec = MailSpec::new(
            "<abc@example.com>".into(),
            ("Zoë Adams".into(), "zoe@example.com".into()),
            vec![("".into(), "bob@example.com".into())],
            "Quarterly numbers — final".into(),
            DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            "Hello,\nsee attached = numbers.\n".into(),
            Some(Attachment {
                name: "q3.pdf".into(),
                content_type: "application/pdf".into(),
                content: Content::Random { seed: 1, len: 3000 },
            }),
        );
        let again = MailSpec::new(
            spec.message_id.clone(),
            spec.from.clone(),
            spec.to.clone(),
            spec.subject.clone(),
            spec.date,
            "Hello,\nsee attached = numbers.\n".into(),
            Some(Attachment {
                name: "q3.pdf".into(),
                content_type: "application/pdf".into(),
                content: Content::Random { seed: 1, len: 3000 },
            }),
        );
        assert_eq!(spec.rendered(), again.rendered());
        let parsed = mail_parser::MessageParser::default()
            .parse(spec.rendered().as_ref())
            .unwrap();
        assert_eq!(parsed.subject(), Some("Quarterly numbers — final"));
        assert_eq!(parsed.message_id(), Some("abc@example.com"));
        assert_eq!(
            parsed.body_text(0).unwrap().replace("\r\n", "\n"),
            "Hello,\nsee attached = numbers.\n"
        );
        let attachment = parsed.attachment(0).unwrap();
        assert_eq!(
            attachment.contents(),
            &Content::Random { seed: 1, len: 3000 }.bytes()[..]
        );
    }
}
