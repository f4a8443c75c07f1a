//! The JSON codec's frames: one JSON object per frame, its kind in `"type"`,
//! a value or result as the JSON text its payload holds (see
//! `docs/PROTOCOL.md`, "The JSON codec").

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::frame::{CommandMode, Frame, FrameError, Item};

/// A frame as the JSON codec writes it.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Out<'a> {
    Hello {
        version: u16,
        token: &'a str,
        name: &'a str,
    },
    Welcome {
        version: u16,
        heartbeat_ms: u64,
        heartbeat_timeout_ms: u64,
        value_timeout_ms: Option<u64>,
        max_frame: u64,
        command: &'a [String],
        mode: CommandMode,
    },
    Reject {
        reason: &'a str,
    },
    Value {
        id: u64,
        value: Payload<'a>,
    },
    Result {
        id: u64,
        value: Payload<'a>,
    },
    Failed {
        id: u64,
        reason: &'a str,
    },
    Done,
    Error {
        message: &'a str,
    },
    Heartbeat,
    Values {
        values: Vec<OutItem<'a>>,
    },
    Results {
        results: Vec<OutItem<'a>>,
    },
}

#[derive(Serialize)]
struct OutItem<'a> {
    id: u64,
    value: Payload<'a>,
}

/// A payload as JSON: the JSON text the codec made, as it is; bytes that
/// are not JSON text (a payload this codec did not make) as a string of
/// their text, invalid UTF-8 replaced by U+FFFD.
enum Payload<'a> {
    Raw(&'a RawValue),
    Text(String),
}

impl Serialize for Payload<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Payload::Raw(raw) => raw.serialize(s),
            Payload::Text(text) => s.serialize_str(text),
        }
    }
}

fn payload(bytes: &[u8]) -> Payload<'_> {
    match serde_json::from_slice::<&RawValue>(bytes) {
        Ok(raw) => Payload::Raw(raw),
        Err(_) => Payload::Text(String::from_utf8_lossy(bytes).into_owned()),
    }
}

fn items(items: &[Item]) -> Vec<OutItem<'_>> {
    items
        .iter()
        .map(|i| OutItem {
            id: i.id,
            value: payload(&i.payload),
        })
        .collect()
}

pub(super) fn encode(frame: &Frame) -> Vec<u8> {
    let out = match frame {
        Frame::Hello { version, token, name } => Out::Hello {
            version: *version,
            token,
            name,
        },
        Frame::Welcome {
            version,
            heartbeat_ms,
            heartbeat_timeout_ms,
            value_timeout_ms,
            max_frame,
            command,
            mode,
        } => Out::Welcome {
            version: *version,
            heartbeat_ms: *heartbeat_ms,
            heartbeat_timeout_ms: *heartbeat_timeout_ms,
            value_timeout_ms: *value_timeout_ms,
            max_frame: *max_frame,
            command,
            mode: *mode,
        },
        Frame::Reject { reason } => Out::Reject { reason },
        Frame::Value { id, payload: p } => Out::Value {
            id: *id,
            value: payload(p),
        },
        Frame::Result { id, payload: p } => Out::Result {
            id: *id,
            value: payload(p),
        },
        Frame::Failed { id, reason } => Out::Failed { id: *id, reason },
        Frame::Done => Out::Done,
        Frame::Error { message } => Out::Error { message },
        Frame::Heartbeat => Out::Heartbeat,
        Frame::Values { values } => Out::Values {
            values: items(values),
        },
        Frame::Results { results } => Out::Results {
            results: items(results),
        },
    };
    serde_json::to_vec(&out).expect("frames always encode as JSON")
}

/// A frame as the JSON codec reads it: every field any frame has, each
/// checked against its kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct In<'a> {
    #[serde(rename = "type")]
    kind: String,
    version: Option<u16>,
    token: Option<String>,
    name: Option<String>,
    heartbeat_ms: Option<u64>,
    heartbeat_timeout_ms: Option<u64>,
    value_timeout_ms: Option<u64>,
    max_frame: Option<u64>,
    command: Option<Vec<String>>,
    mode: Option<CommandMode>,
    reason: Option<String>,
    message: Option<String>,
    id: Option<u64>,
    #[serde(borrow)]
    value: Option<&'a RawValue>,
    #[serde(borrow)]
    values: Option<Vec<InItem<'a>>>,
    #[serde(borrow)]
    results: Option<Vec<InItem<'a>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InItem<'a> {
    id: u64,
    /// Absent or `null`: the payload is `null`.
    #[serde(borrow)]
    value: Option<&'a RawValue>,
}

fn bytes_of(value: Option<&RawValue>) -> Vec<u8> {
    value.map_or_else(|| b"null".to_vec(), |raw| raw.get().as_bytes().to_vec())
}

pub(super) fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
    let malformed = |reason: String| FrameError::Malformed {
        size: bytes.len(),
        reason,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| malformed(format!("not UTF-8: {e}")))?;
    let m: In<'_> = serde_json::from_str(text).map_err(|e| malformed(format!("not a JSON frame: {e}")))?;
    let missing = |field: &str| malformed(format!("a {:?} frame needs {field:?}", m.kind));
    let convert = |items: Vec<InItem<'_>>| -> Vec<Item> {
        items
            .into_iter()
            .map(|i| Item {
                id: i.id,
                payload: bytes_of(i.value),
            })
            .collect()
    };
    Ok(match m.kind.as_str() {
        "hello" => Frame::Hello {
            version: m.version.ok_or_else(|| missing("version"))?,
            token: m.token.clone().unwrap_or_default(),
            name: m.name.clone().unwrap_or_default(),
        },
        "welcome" => Frame::Welcome {
            version: m.version.ok_or_else(|| missing("version"))?,
            heartbeat_ms: m.heartbeat_ms.ok_or_else(|| missing("heartbeat_ms"))?,
            heartbeat_timeout_ms: m
                .heartbeat_timeout_ms
                .ok_or_else(|| missing("heartbeat_timeout_ms"))?,
            value_timeout_ms: m.value_timeout_ms,
            max_frame: m.max_frame.ok_or_else(|| missing("max_frame"))?,
            command: m.command.clone().unwrap_or_default(),
            mode: m.mode.unwrap_or_default(),
        },
        "reject" => Frame::Reject {
            reason: m.reason.clone().unwrap_or_default(),
        },
        "value" => Frame::Value {
            id: m.id.ok_or_else(|| missing("id"))?,
            payload: bytes_of(m.value),
        },
        "result" => Frame::Result {
            id: m.id.ok_or_else(|| missing("id"))?,
            payload: bytes_of(m.value),
        },
        "failed" => Frame::Failed {
            id: m.id.ok_or_else(|| missing("id"))?,
            reason: m.reason.clone().unwrap_or_default(),
        },
        "done" => Frame::Done,
        "error" => Frame::Error {
            message: m.message.clone().unwrap_or_default(),
        },
        "heartbeat" => Frame::Heartbeat,
        "values" => Frame::Values {
            values: convert(m.values.ok_or_else(|| missing("values"))?),
        },
        "results" => Frame::Results {
            results: convert(m.results.ok_or_else(|| missing("results"))?),
        },
        other => return Err(malformed(format!("unknown frame type {other:?}"))),
    })
}
