//! MBOX in the mboxrd convention: each message opens with a `From ` line,
//! every line of the message that starts with `>*From ` gets one more `>`
//! (so a reader can take exactly one off), and a blank line ends it.

use chrono::{DateTime, Utc};

/// The separator line that opens a message.
pub fn separator(sender: Option<&str>, date: DateTime<Utc>) -> Vec<u8> {
    let sender = sender
        .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
        .unwrap_or("MAILER-DAEMON");
    format!("From {sender} {}\n", date.format("%a %b %e %H:%M:%S %Y")).into_bytes()
}

/// Quotes a message's `From ` lines as its content streams through, in
/// pieces of any size.
#[derive(Debug)]
pub struct MboxrdQuoter {
    /// The start of the current line, while it may still be `>*From `.
    pending: Vec<u8>,
    collecting: bool,
    last: Option<u8>,
}

impl Default for MboxrdQuoter {
    fn default() -> Self {
        Self {
            pending: Vec::new(),
            collecting: true,
            last: None,
        }
    }
}

impl MboxrdQuoter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Quote `input`, appending to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            self.last = Some(b);
            if !self.collecting {
                out.push(b);
                if b == b'\n' {
                    self.collecting = true;
                }
                continue;
            }
            self.pending.push(b);
            let quotes = self.pending.iter().take_while(|&&c| c == b'>').count();
            let rest = &self.pending[quotes..];
            if rest == b"From " {
                out.push(b'>');
                out.append(&mut self.pending);
                self.collecting = false;
            } else if !b"From ".starts_with(rest) {
                out.append(&mut self.pending);
                self.collecting = b == b'\n';
            }
        }
    }

    /// The end of the message: what is pending, a line end if the message
    /// lacks one, and the blank line that separates messages.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        out.append(&mut self.pending);
        if self.last != Some(b'\n') {
            out.push(b'\n');
        }
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote_in_pieces(message: &[u8], piece: usize) -> Vec<u8> {
        let mut q = MboxrdQuoter::new();
        let mut out = Vec::new();
        for chunk in message.chunks(piece) {
            q.push(chunk, &mut out);
        }
        q.finish(&mut out);
        out
    }

    #[test]
    fn from_lines_are_quoted_once_more_whatever_the_pieces() {
        let message = b"Subject: x\r\n\r\nFrom here\r\n>From there\r\nFro\r\nnot From \r\nFrom";
        let want: &[u8] =
            b"Subject: x\r\n\r\n>From here\r\n>>From there\r\nFro\r\nnot From \r\nFrom\n\n";
        for piece in [1, 2, 3, 7, 1000] {
            assert_eq!(quote_in_pieces(message, piece), want, "pieces of {piece}");
        }
    }

    #[test]
    fn a_standard_mbox_reader_gives_the_messages_back() {
        let messages: [&[u8]; 2] = [
            b"From: a@example.com\nSubject: one\n\nFrom the start\n>From quoted\n",
            b"From: b@example.com\nSubject: two\n\nno newline at the end",
        ];
        let mut mbox = Vec::new();
        for m in messages {
            mbox.extend(separator(Some("a@example.com"), Utc::now()));
            let mut q = MboxrdQuoter::new();
            q.push(m, &mut mbox);
            q.finish(&mut mbox);
        }
        let read: Vec<_> = mail_parser::mailbox::mbox::MessageIterator::new(&mbox[..])
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].contents().strip_suffix(b"\n").unwrap(), messages[0]);
        assert_eq!(
            read[1].contents().strip_suffix(b"\n\n").unwrap(),
            messages[1]
        );
    }
}
