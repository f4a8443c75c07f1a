//! Regression tests of the lender's async adapters for the rows of issue 8
//! (hardening): each failed before its fix.

use std::future::Future;
use std::num::NonZeroU64;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use pando_lend_stream::{Lent, StreamLender};
use pando_pull_stream::{collect, count, map, pull, take};

type L = StreamLender<u64, u64, ()>;

/// Polls `f` once with a no-op waker.
fn poll_once<F: Future>(f: F) -> Poll<F::Output> {
    pin!(f).poll(&mut Context::from_waker(Waker::noop()))
}

/// Issue 8, row 5: once the output's consumer stopped early (`take(3)`),
/// `settled()` returns (it never did: the input's end was not recorded).
#[test]
fn settled_returns_once_the_consumer_stopped_early() {
    futures::executor::block_on(async {
        // An endless input, read at most 4 values ahead of the output.
        let lender = L::new().with_read_ahead(NonZeroU64::new(4).unwrap());
        let output = pull!(count(u64::MAX), lender.clone(), take(3), collect::<Vec<_>>());
        let sub = lender.lend_stream::<()>();
        let worker = pull!(sub.source, map(|l: Lent<u64>| l.map(|x| x * 2)), sub.sink);
        let (results, worked) = futures::join!(output, worker);
        assert_eq!(results, Ok(vec![2, 4, 6]));
        assert_eq!(worked, Ok(()));
        assert_eq!(poll_once(lender.settled()), Poll::Ready(()));
    });
}
