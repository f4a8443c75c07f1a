//! [`SubStreamModule`] for [`StreamLender`]: the harness drives the real
//! async lender (Serializer input, sub-stream adapters), with concurrent asks
//! through [`SubSource::ask_owned`](pando_lend_stream::SubSource::ask_owned).

use pando_lend_stream::{
    LendError, LenderOutput, Lent, OwnedConcurrentAsk, StreamLender, SubSinkFuture, SubSource, SubStreamError,
};
use pando_pull_stream::Connect;

use super::{HarnessInput, SinkOutcome, SubStreamModule, TestError, TestResults};

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

    fn create(ordered: bool) -> Self {
        if ordered { L::new() } else { L::unordered() }
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

    fn lent(item: &Lent<u64>) -> (u64, u64) {
        (item.id, item.value)
    }

    fn result(id: u64, result: u64) -> Lent<u64> {
        Lent::new(id, result)
    }

    fn output_failure() -> LendError<TestError> {
        LendError::Input(TestError::Sink)
    }

    fn input_error(error: &LendError<TestError>) -> Option<TestError> {
        match error {
            LendError::Input(e) => Some(*e),
            _ => None,
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
