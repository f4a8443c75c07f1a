//! Lines as bytes: the input of `pando` and the answers of a line filter.
//!
//! A line is everything up to a `\n`, without it; a `\r` left at its end is
//! removed too, so `\r\n` files give the same lines as `\n` files. The bytes
//! need not be UTF-8. A last line without a `\n` still counts; an empty
//! line is a value of its own.

use std::io;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use tokio::io::AsyncRead;
use tokio_util::codec::{AnyDelimiterCodec, AnyDelimiterCodecError, Decoder, FramedRead};

/// The codec that splits a byte stream at each `\n` (and drops the `\n`).
pub(crate) fn codec() -> AnyDelimiterCodec {
    AnyDelimiterCodec::new(b"\n".to_vec(), Vec::new())
}

/// Like [`codec`], with chunks of at most `max` bytes (a longer one is an error).
pub(crate) fn codec_with_max_length(max: usize) -> AnyDelimiterCodec {
    AnyDelimiterCodec::new_with_max_length(b"\n".to_vec(), Vec::new(), max)
}

/// Like [`codec_with_max_length`], but the output must end with a whole
/// line: a last line without its `\n` (a filter that died in the middle of
/// an answer) is an error, not an answer.
pub(crate) struct WholeLines(AnyDelimiterCodec);

impl WholeLines {
    /// Lines of at most `max` bytes.
    pub(crate) fn new(max: usize) -> Self {
        WholeLines(codec_with_max_length(max))
    }
}

impl Decoder for WholeLines {
    type Item = Bytes;
    type Error = AnyDelimiterCodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, Self::Error> {
        self.0.decode(buf)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, Self::Error> {
        match self.0.decode(buf)? {
            Some(line) => Ok(Some(line)),
            None if buf.is_empty() => Ok(None),
            None => {
                buf.clear();
                Err(AnyDelimiterCodecError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "it ended in the middle of a line (an answer without its newline)",
                )))
            }
        }
    }
}

/// Removes a trailing `\n`, then a trailing `\r`.
pub(crate) fn strip_line_end(line: &mut Vec<u8>) {
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
}

/// The codec's error as an I/O error.
pub(crate) fn io_error(e: AnyDelimiterCodecError) -> io::Error {
    match e {
        AnyDelimiterCodecError::Io(e) => e,
        other => io::Error::other(other),
    }
}

/// The lines of `reader`, as bytes, each at most `max` bytes (without its
/// line end); a read error (shareable, as the lender's input needs) is the
/// stream's last item. A longer line is such an error, naming the line: it
/// could never travel as a value, and reading it whole would let one line
/// take any amount of memory.
pub(crate) fn byte_lines<R>(
    reader: R,
    max: usize,
) -> impl Stream<Item = Result<Vec<u8>, Arc<io::Error>>> + Send + 'static
where
    R: AsyncRead + Send + 'static,
{
    // One more byte for a `\r` before the `\n`, checked after stripping.
    let mut number = 0u64;
    FramedRead::new(reader, codec_with_max_length(max.saturating_add(1)))
        .map(move |chunk| {
            number += 1;
            let too_long = || {
                Arc::new(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("input line {number} is longer than {max} bytes, the most one value can carry"),
                ))
            };
            let mut line: Vec<u8> = match chunk {
                Ok(chunk) => chunk.into(),
                Err(AnyDelimiterCodecError::MaxChunkLengthExceeded) => return Err(too_long()),
                Err(e) => return Err(Arc::new(io_error(e))),
            };
            strip_line_end(&mut line);
            if line.len() > max {
                return Err(too_long());
            }
            Ok(line)
        })
        // The error is the last item: the codec would go on after a long line.
        .scan(false, |failed, item| {
            let item = (!*failed).then(|| {
                *failed = item.is_err();
                item
            });
            futures::future::ready(item)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines_of(input: &'static [u8]) -> Vec<Vec<u8>> {
        byte_lines(input, 1 << 20)
            .map(|l| l.expect("no read error"))
            .collect()
            .await
    }

    #[tokio::test]
    async fn lines_are_bytes_and_crlf_is_stripped_like_lf() {
        let got = lines_of(b"a\xffb\nc\r\n\nlast").await;
        assert_eq!(
            got,
            vec![b"a\xffb".to_vec(), b"c".to_vec(), b"".to_vec(), b"last".to_vec()]
        );
    }

    #[tokio::test]
    async fn a_final_newline_adds_no_empty_line_and_no_input_no_line() {
        assert_eq!(lines_of(b"x\n").await, vec![b"x".to_vec()]);
        assert!(lines_of(b"").await.is_empty());
    }

    #[tokio::test]
    async fn a_line_longer_than_the_limit_ends_the_lines_with_an_error_naming_it() {
        let got: Vec<_> = byte_lines(&b"abc\r\nabcd\nabcde\nnever\n"[..], 4).collect().await;
        assert_eq!(got[0].as_deref().unwrap(), b"abc");
        assert_eq!(got[1].as_deref().unwrap(), b"abcd");
        let e = got[2].as_ref().unwrap_err();
        assert_eq!(
            e.to_string(),
            "input line 3 is longer than 4 bytes, the most one value can carry"
        );
        assert_eq!(got.len(), 3, "nothing is read after the error");
    }

    #[tokio::test]
    async fn whole_lines_refuse_a_last_line_without_its_newline() {
        let got: Vec<_> = FramedRead::new(&b"a\nb\npart"[..], WholeLines::new(100))
            .collect()
            .await;
        assert_eq!(got[0].as_deref().unwrap(), b"a");
        assert_eq!(got[1].as_deref().unwrap(), b"b");
        assert!(got[2].is_err(), "{:?}", got[2]);
        let fine: Vec<_> = FramedRead::new(&b"a\n"[..], WholeLines::new(100)).collect().await;
        assert_eq!(fine.len(), 1);
    }

    #[test]
    fn strip_removes_one_newline_then_one_carriage_return() {
        for (input, want) in [
            (&b"x\r\n"[..], &b"x"[..]),
            (b"x\n", b"x"),
            (b"x\r", b"x"),
            (b"x\n\n", b"x\n"),
            (b"x\r\r\n", b"x\r"),
            (b"", b""),
        ] {
            let mut line = input.to_vec();
            strip_line_end(&mut line);
            assert_eq!(line, want, "{input:?}");
        }
    }
}
