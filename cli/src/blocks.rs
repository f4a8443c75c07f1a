//! Blocks of whole lines (`pando --pipe`): the input cut into values of at
//! most `--block` bytes and/or `--block-lines` lines.
//!
//! A block is the input's bytes as they are: its lines keep their `\n`
//! (and any `\r`), and the last line of the input keeps its lack of one. A
//! line is never split: a line longer than `--block` is a block of its own.
//! An empty input has no block.

use std::io;
use std::num::NonZeroUsize;
use std::sync::Arc;

use futures::Stream;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

/// The read buffer.
const READ_BUFFER: usize = 256 * 1024;

/// How input lines are grouped into blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// The most bytes in a block, unless its only line is longer.
    pub(crate) bytes: NonZeroUsize,
    /// The most lines in a block, if limited.
    pub(crate) lines: Option<NonZeroUsize>,
    /// The most bytes of one line (the most one value can carry): a longer
    /// line ends the blocks with an error naming it, instead of being read
    /// whole into memory.
    pub(crate) max_line: usize,
}

/// A block: the bytes of its lines, the number of its first line (from 1)
/// and how many lines it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Block {
    pub(crate) bytes: Vec<u8>,
    pub(crate) first_line: u64,
    pub(crate) lines: u64,
}

struct State<R> {
    reader: BufReader<R>,
    limits: Limits,
    /// A line read that did not fit the last block: it starts the next one.
    carry: Vec<u8>,
    next_line: u64,
    ended: bool,
}

/// The blocks of `reader`; a read error (shareable, as the lender's input
/// needs) is the stream's last item.
pub(crate) fn blocks<R>(
    reader: R,
    limits: Limits,
) -> impl Stream<Item = Result<Block, Arc<io::Error>>> + Send + 'static
where
    R: AsyncRead + Send + Unpin + 'static,
{
    let state = State {
        reader: BufReader::with_capacity(READ_BUFFER, reader),
        limits,
        carry: Vec::new(),
        next_line: 1,
        ended: false,
    };
    futures::stream::try_unfold(state, |mut state| async move {
        if state.ended && state.carry.is_empty() {
            return Ok(None);
        }
        let block = next_block(&mut state).await.map_err(Arc::new)?;
        Ok(block.map(|block| (block, state)))
    })
}

/// Reads lines until the block is full (or the input ends).
async fn next_block<R: AsyncRead + Unpin>(state: &mut State<R>) -> io::Result<Option<Block>> {
    let max_bytes = state.limits.bytes.get();
    let max_lines = state.limits.lines.map_or(u64::MAX, |n| n.get() as u64);
    let mut bytes = std::mem::take(&mut state.carry);
    let mut lines = u64::from(!bytes.is_empty());
    while lines < max_lines && bytes.len() < max_bytes && !state.ended {
        let before = bytes.len();
        let limit = state.limits.max_line as u64 + 1;
        let n = (&mut state.reader)
            .take(limit)
            .read_until(b'\n', &mut bytes)
            .await?;
        if n == 0 {
            state.ended = true;
            break;
        }
        if n > state.limits.max_line {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "input line {} is longer than {} bytes, the most one value can carry",
                    state.next_line + lines,
                    state.limits.max_line
                ),
            ));
        }
        if bytes.len() > max_bytes && lines > 0 {
            // This line does not fit: it starts the next block.
            state.carry = bytes.split_off(before);
            break;
        }
        lines += 1;
    }
    if lines == 0 {
        return Ok(None);
    }
    let block = Block {
        bytes,
        first_line: state.next_line,
        lines,
    };
    state.next_line += lines;
    Ok(Some(block))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn limits(bytes: usize, lines: Option<usize>) -> Limits {
        limits_with_max_line(bytes, lines, 1 << 20)
    }

    fn limits_with_max_line(bytes: usize, lines: Option<usize>, max_line: usize) -> Limits {
        Limits {
            bytes: NonZeroUsize::new(bytes).unwrap(),
            lines: lines.map(|n| NonZeroUsize::new(n).unwrap()),
            max_line,
        }
    }

    #[tokio::test]
    async fn a_line_longer_than_a_value_can_carry_ends_the_blocks_with_an_error_naming_it() {
        let got: Vec<_> = blocks(&b"ab\ncd\nefghij\nnever\n"[..], limits_with_max_line(3, None, 4))
            .collect()
            .await;
        assert_eq!(got[0].as_ref().unwrap().bytes, b"ab\n");
        assert_eq!(got[1].as_ref().unwrap().bytes, b"cd\n");
        let e = got[2].as_ref().unwrap_err();
        assert_eq!(
            e.to_string(),
            "input line 3 is longer than 4 bytes, the most one value can carry"
        );
        assert_eq!(got.len(), 3, "nothing is read after the error");
    }

    async fn cut(input: &'static [u8], limits: Limits) -> Vec<(String, u64, u64)> {
        blocks(input, limits)
            .map(|b| {
                let b = b.unwrap();
                (String::from_utf8(b.bytes).unwrap(), b.first_line, b.lines)
            })
            .collect()
            .await
    }

    #[tokio::test]
    async fn blocks_by_lines_keep_the_bytes_as_they_are() {
        let got = cut(b"1\n2\r\n3\n4\n5", limits(1 << 20, Some(2))).await;
        assert_eq!(
            got,
            vec![
                ("1\n2\r\n".into(), 1, 2),
                ("3\n4\n".into(), 3, 2),
                ("5".into(), 5, 1)
            ]
        );
    }

    #[tokio::test]
    async fn blocks_by_size_hold_whole_lines_up_to_the_size() {
        // Lines of 4 bytes; 10 bytes hold two of them.
        let got = cut(b"aaa\nbbb\nccc\nddd\neee\n", limits(10, None)).await;
        assert_eq!(
            got,
            vec![
                ("aaa\nbbb\n".into(), 1, 2),
                ("ccc\nddd\n".into(), 3, 2),
                ("eee\n".into(), 5, 1)
            ]
        );
        // Exactly full: 8 bytes hold two lines.
        let got = cut(b"aaa\nbbb\nccc\n", limits(8, None)).await;
        assert_eq!(got, vec![("aaa\nbbb\n".into(), 1, 2), ("ccc\n".into(), 3, 1)]);
    }

    #[tokio::test]
    async fn a_line_longer_than_the_block_is_a_block_of_its_own_never_split() {
        let got = cut(b"a\nlonger line\nb\nc\n", limits(4, None)).await;
        assert_eq!(
            got,
            vec![
                ("a\n".into(), 1, 1),
                ("longer line\n".into(), 2, 1),
                ("b\nc\n".into(), 3, 2)
            ]
        );
    }

    #[tokio::test]
    async fn both_limits_apply_whichever_comes_first() {
        let got = cut(b"1\n2\n3\n4444444\n5\n", limits(6, Some(2))).await;
        assert_eq!(
            got,
            vec![
                ("1\n2\n".into(), 1, 2),
                ("3\n".into(), 3, 1),
                ("4444444\n".into(), 4, 1),
                ("5\n".into(), 5, 1)
            ]
        );
    }

    #[tokio::test]
    async fn no_input_no_block_and_empty_lines_count() {
        assert!(cut(b"", limits(10, None)).await.is_empty());
        assert_eq!(
            cut(b"\n\n\n", limits(10, Some(2))).await,
            vec![("\n\n".into(), 1, 2), ("\n".into(), 3, 1)]
        );
    }

    #[tokio::test]
    async fn a_million_lines_make_a_few_blocks_with_nothing_lost() {
        let input: String = (0..1_000_000).map(|i| format!("{i}\n")).collect();
        let input: &'static [u8] = Box::leak(input.into_bytes().into_boxed_slice());
        let got: Vec<Block> = blocks(input, limits(1 << 20, None))
            .map(Result::unwrap)
            .collect()
            .await;
        assert!(
            got.iter()
                .all(|b| b.bytes.len() <= 1 << 20 && b.bytes.ends_with(b"\n"))
        );
        let joined: Vec<u8> = got.iter().flat_map(|b| b.bytes.iter().copied()).collect();
        assert_eq!(joined, input);
        assert_eq!(got.iter().map(|b| b.lines).sum::<u64>(), 1_000_000);
    }
}
