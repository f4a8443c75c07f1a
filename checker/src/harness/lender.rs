//! [`SubStreamModule`] for [`StreamLender`]: the harness drives the real
//! async lender (Serializer input, sub-stream adapters), with concurrent asks
//! through [`SubSource::ask_owned`](pando_lend_stream::SubSource::ask_owned).

use std::num::NonZeroU64;

use pando_lend_stream::{
    CloseFuture, LendError, LenderOutput, Lent, OwnedConcurrentAsk, PoisonPolicy, Settled, StreamLender,
    SubSinkFuture, SubSource, SubStreamError,
};
use pando_pull_stream::Connect;

use super::{
    HarnessInput, OutputError, Poison, Settings, SinkOutcome, SubStreamModule, TestError, TestResults,
};

type L = StreamLender<u64, u64, TestError>;

impl SubStreamModule for L {
    type Output = LenderOutput<u64, u64, TestError>;
    type OutputError = LendError<TestError>;
    type Lent = Lent<u64>;
    type Result = Lent<u64>;
    type SubSource = SubSource<u64, u64, TestError, TestError>;
    type Ask = OwnedConcurrentAsk<u64, u64, TestError, TestError>;
    type SinkFuture = SubSinkFuture<TestResults<Lent<u64>>, u64, u64, TestError>;
    type SinkError = SubStreamError<TestError>;
    type CloseFuture = CloseFuture<u64, TestError>;
    type Settled = Settled<u64, u64, TestError>;

    fn create(settings: &Settings) -> Self {
        let mut lender = if settings.ordered {
            L::new()
        } else {
            L::unordered()
        };
        if let Some(bound) = settings.read_ahead.and_then(NonZeroU64::new) {
            lender = lender.with_read_ahead(bound);
        }
        if let Some(max) = settings.max_retries {
            let policy = match settings.poison {
                Poison::Fail => PoisonPolicy::Fail,
                Poison::Skip => PoisonPolicy::Skip,
            };
            lender = lender.with_max_retries(max, policy);
        }
        if let Some(k) = std::num::NonZeroU32::new(settings.replicas).filter(|k| k.get() > 1) {
            lender = lender.with_replicas(k);
        }
        lender
    }

    fn connect(&mut self, input: HarnessInput) -> Self::Output {
        self.clone().connect(input)
    }

    fn lend_stream(&mut self, results: TestResults<Lent<u64>>) -> (Self::SubSource, Self::SinkFuture) {
        let sub = L::lend_stream::<TestError>(self);
        (sub.source, sub.sink.connect(results))
    }

    fn ask(source: &Self::SubSource) -> Self::Ask {
        source.ask_owned()
    }

    const CAN_RECLAIM: bool = true;

    fn reject(source: &Self::SubSource, id: u64) -> bool {
        source.rejecter().reject(id, "rejected by the harness")
    }

    fn reclaim(source: &Self::SubSource, id: u64) -> bool {
        source
            .rejecter()
            .reclaim(id, "reclaimed by the harness (a timeout)")
    }

    fn close(&self) -> Self::CloseFuture {
        L::close(self)
    }

    fn cut_off(&self) {
        L::cut_off(self)
    }

    fn settled(&self) -> Self::Settled {
        L::settled(self)
    }

    fn held(&self) -> Option<u64> {
        let s = self.state();
        Some(s.read.saturating_sub(s.output).saturating_sub(s.skipped))
    }

    fn lent(item: &Lent<u64>) -> (u64, u64) {
        (item.id, item.value)
    }

    fn result(id: u64, result: u64) -> Lent<u64> {
        Lent::new(id, result)
    }

    fn output_failure() -> LendError<TestError> {
        LendError::Input(TestError::Sink)
    }

    fn output_error(error: &LendError<TestError>) -> OutputError {
        match error {
            LendError::Input(e) => OutputError::Input(*e),
            LendError::Poisoned { id, .. } => OutputError::Poisoned { id: *id },
            LendError::Closed { first, .. } => OutputError::Closed { first: *first },
            LendError::InputPanicked { .. } => OutputError::InputPanicked,
        }
    }

    fn sink_outcome(outcome: &Result<(), SubStreamError<TestError>>) -> SinkOutcome {
        match outcome {
            Ok(()) => SinkOutcome::Ok,
            Err(SubStreamError::UnexpectedResult { id, .. }) => SinkOutcome::Unexpected(*id),
            Err(_) => SinkOutcome::Failed,
        }
    }

    fn describe(&self) -> String {
        format!("{:?}", self.state())
    }
}
