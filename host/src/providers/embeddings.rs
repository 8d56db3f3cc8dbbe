//! Embeddings as providers take them (OpenAI's `/embeddings` shape) and as the gateway
//! reads them back. An upstream is untrusted: its reply is parsed against caps on the
//! number of vectors, their dimensions and the values of all of them together, checked
//! while the JSON is read, so no reply makes the gateway allocate more than the caps.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::{estimate_tokens, ProviderError};

/// Inputs in one request: OpenAI's own limit, so a client written for OpenAI never
/// meets a lower one here.
pub const MAX_INPUTS: usize = 2048;

/// Dimensions of one vector, asked for (`dimensions`) or returned: twice the largest
/// common embedding models (4096), so a reply cannot grow one vector without bound.
pub const MAX_DIMENSIONS: usize = 8192;

/// Values of all vectors of one reply together (32 MiB as `f32`): 2048 inputs of 4096
/// dimensions. A reply past it is refused, not held.
pub const MAX_VALUES: usize = 1 << 23;

/// What to embed: OpenAI's four shapes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

impl EmbeddingInput {
    /// How many vectors the request asks for.
    pub fn len(&self) -> usize {
        match self {
            EmbeddingInput::Text(_) | EmbeddingInput::Tokens(_) => 1,
            EmbeddingInput::Texts(t) => t.len(),
            EmbeddingInput::TokenLists(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Input tokens before the upstream counts them: exact for token ids, ~4 characters
    /// a token for text (what reservations against spend limits use).
    pub fn estimate_tokens(&self) -> u32 {
        let sum = |it: &mut dyn Iterator<Item = u32>| it.fold(0u32, u32::saturating_add);
        match self {
            EmbeddingInput::Text(t) => estimate_tokens(t),
            EmbeddingInput::Texts(t) => sum(&mut t.iter().map(|s| estimate_tokens(s))),
            EmbeddingInput::Tokens(t) => t.len() as u32,
            EmbeddingInput::TokenLists(t) => sum(&mut t.iter().map(|l| l.len() as u32)),
        }
    }
}

/// Token ids are non-negative integers that fit in 32 bits.
fn token<E: de::Error>(v: u64) -> Result<u32, E> {
    u32::try_from(v).map_err(|_| E::custom(format!("token id {v} is out of range")))
}

/// One element of an `input` array, before the array's shape is known.
enum Element {
    Text(String),
    Token(u32),
    Tokens(Vec<u32>),
}

impl<'de> Deserialize<'de> for Element {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Element, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Element;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, a token id or an array of token ids")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Element, E> {
                Ok(Element::Text(s.to_string()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Element, E> {
                Ok(Element::Text(s))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Element, E> {
                token(v).map(Element::Token)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Element, E> {
                Err(E::custom(format!("token id {v} is out of range")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Element, A::Error> {
                let mut out = Vec::new();
                while let Some(t) = seq.next_element::<u64>()? {
                    out.push(token(t)?);
                }
                Ok(Element::Tokens(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for EmbeddingInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<EmbeddingInput, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EmbeddingInput;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a string, an array of strings, an array of token ids or an array of arrays of token ids",
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<EmbeddingInput, E> {
                Ok(EmbeddingInput::Text(s.to_string()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<EmbeddingInput, E> {
                Ok(EmbeddingInput::Text(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EmbeddingInput, A::Error> {
                let mixed =
                    || de::Error::custom("an array mixes strings, token ids and token arrays");
                let mut input = match seq.next_element::<Element>()? {
                    None => EmbeddingInput::Texts(Vec::new()),
                    Some(Element::Text(t)) => EmbeddingInput::Texts(vec![t]),
                    Some(Element::Token(t)) => EmbeddingInput::Tokens(vec![t]),
                    Some(Element::Tokens(t)) => EmbeddingInput::TokenLists(vec![t]),
                };
                while let Some(e) = seq.next_element::<Element>()? {
                    match (&mut input, e) {
                        (EmbeddingInput::Texts(v), Element::Text(t)) => v.push(t),
                        (EmbeddingInput::Tokens(v), Element::Token(t)) => v.push(t),
                        (EmbeddingInput::TokenLists(v), Element::Tokens(t)) => v.push(t),
                        _ => return Err(mixed()),
                    }
                    // Stop reading as soon as there are too many, not after.
                    if input.len() > MAX_INPUTS {
                        return Err(de::Error::custom(format!(
                            "at most {MAX_INPUTS} inputs in one request"
                        )));
                    }
                }
                Ok(input)
            }
        }
        d.deserialize_any(V)
    }
}

/// How vectors travel: JSON numbers, or base64 of little-endian `f32`s (what OpenAI's
/// clients ask for by default: a quarter of the bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncodingFormat {
    #[default]
    Float,
    Base64,
}

/// An embeddings call as a provider makes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmbeddingRequest {
    /// The model's name at the provider.
    pub model: String,
    pub input: EmbeddingInput,
    /// As the caller asked; the reply is read in either format whatever was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<EncodingFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Fields the gateway does not know; sent only by a provider that forwards them
    /// (which adds them to the body itself).
    #[serde(skip)]
    pub extra: BTreeMap<String, serde_json::Value>,
    /// Upper bound for the whole call, retries included.
    #[serde(skip)]
    pub timeout: Option<Duration>,
}

/// The vectors, in input order, and the input tokens billed.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingResponse {
    pub model: String,
    pub vectors: Vec<Vec<f32>>,
    pub input_tokens: u32,
}

/// Marks a serde error raised by a cap, so it is reported as too large, not malformed.
const OVER_CAP: &str = "over the gateway's cap: ";

fn over_cap<E: de::Error>(what: String) -> E {
    E::custom(format!("{OVER_CAP}{what}"))
}

/// One vector, bounded by [`MAX_DIMENSIONS`] while it is read.
struct Vector(Vec<f32>);

impl<'de> Deserialize<'de> for Vector {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Vector, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vector;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of numbers or a base64 string")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vector, A::Error> {
                let mut out = Vec::new();
                while let Some(x) = seq.next_element::<f32>()? {
                    if out.len() == MAX_DIMENSIONS {
                        return Err(over_cap(format!(
                            "a vector of more than {MAX_DIMENSIONS} dimensions"
                        )));
                    }
                    out.push(x);
                }
                Ok(Vector(out))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Vector, E> {
                if s.len() > (MAX_DIMENSIONS * 4).div_ceil(3) * 4 {
                    return Err(over_cap(format!(
                        "a vector of more than {MAX_DIMENSIONS} dimensions"
                    )));
                }
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|e| E::custom(format!("base64 vector: {e}")))?;
                if bytes.len() % 4 != 0 {
                    return Err(E::custom("a base64 vector is not whole f32 values"));
                }
                Ok(Vector(
                    bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                ))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct Item {
    index: u32,
    embedding: Vector,
}

/// The `data` array, bounded by [`MAX_INPUTS`] vectors and [`MAX_VALUES`] values.
struct Items(Vec<Item>);

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Items, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Items;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of embeddings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items, A::Error> {
                let (mut out, mut values) = (Vec::new(), 0usize);
                while let Some(item) = seq.next_element::<Item>()? {
                    values += item.embedding.0.len();
                    if out.len() == MAX_INPUTS || values > MAX_VALUES {
                        return Err(over_cap(format!(
                            "more than {MAX_INPUTS} vectors or {MAX_VALUES} values"
                        )));
                    }
                    out.push(item);
                }
                Ok(Items(out))
            }
        }
        d.deserialize_seq(V)
    }
}

#[derive(Deserialize)]
struct Body {
    data: Items,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<UsageBody>,
}

#[derive(Deserialize)]
struct UsageBody {
    #[serde(default)]
    prompt_tokens: u32,
}

/// Reads an OpenAI-shaped embeddings reply to `request`: one vector per input, each
/// index once, every value finite, within the caps.
pub fn parse_embeddings(
    bytes: &[u8],
    request: &EmbeddingRequest,
) -> Result<EmbeddingResponse, ProviderError> {
    let body: Body = serde_json::from_slice(bytes).map_err(|e| {
        let text = e.to_string();
        match text.strip_prefix(OVER_CAP) {
            Some(what) => ProviderError::TooLarge(format!("embeddings reply: {what}")),
            None => ProviderError::Malformed(format!("embeddings JSON: {text}")),
        }
    })?;
    let wanted = request.input.len();
    let items = body.data.0;
    if items.len() != wanted {
        return Err(ProviderError::Malformed(format!(
            "{} embeddings for {wanted} inputs",
            items.len()
        )));
    }
    let mut vectors: Vec<Option<Vec<f32>>> = vec![None; wanted];
    for item in items {
        let slot = vectors
            .get_mut(item.index as usize)
            .ok_or_else(|| ProviderError::Malformed(format!("embedding index {}", item.index)))?;
        if slot.is_some() {
            return Err(ProviderError::Malformed(format!(
                "embedding index {} twice",
                item.index
            )));
        }
        let v = item.embedding.0;
        if v.is_empty() || v.iter().any(|x| !x.is_finite()) {
            return Err(ProviderError::Malformed(format!(
                "embedding {} is empty or not finite",
                item.index
            )));
        }
        *slot = Some(v);
    }
    Ok(EmbeddingResponse {
        model: body.model.unwrap_or_else(|| request.model.clone()),
        // Every slot is filled: as many items as slots, no index twice.
        vectors: vectors.into_iter().flatten().collect(),
        input_tokens: match body.usage {
            Some(u) if u.prompt_tokens > 0 => u.prompt_tokens,
            _ => request.input.estimate_tokens(),
        },
    })
}

/// A vector as OpenAI's base64 encoding carries it: its little-endian `f32`s.
pub fn to_base64(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(input: EmbeddingInput) -> EmbeddingRequest {
        EmbeddingRequest {
            model: "m".into(),
            input,
            encoding_format: None,
            dimensions: None,
            user: None,
            extra: BTreeMap::new(),
            timeout: None,
        }
    }

    fn texts(n: usize) -> EmbeddingInput {
        EmbeddingInput::Texts(vec!["x".into(); n])
    }

    #[test]
    fn inputs_parse_in_openais_four_shapes() {
        let parse = |j: &str| serde_json::from_str::<EmbeddingInput>(j);
        assert_eq!(parse(r#""hi""#).unwrap(), EmbeddingInput::Text("hi".into()));
        assert_eq!(
            parse(r#"["a", "b"]"#).unwrap(),
            EmbeddingInput::Texts(vec!["a".into(), "b".into()])
        );
        assert_eq!(parse("[1, 2]").unwrap(), EmbeddingInput::Tokens(vec![1, 2]));
        assert_eq!(
            parse("[[1], [2, 3]]").unwrap(),
            EmbeddingInput::TokenLists(vec![vec![1], vec![2, 3]])
        );
        assert_eq!(parse("[]").unwrap(), EmbeddingInput::Texts(vec![]));
        for bad in [
            r#"["a", 1]"#,
            "[1, [2]]",
            "[-1]",
            "[4294967296]",
            "[1.5]",
            "7",
            "{}",
            "[null]",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let many = serde_json::to_string(&vec!["x"; MAX_INPUTS + 1]).unwrap();
        let e = parse(&many).unwrap_err().to_string();
        assert!(e.contains("at most 2048 inputs"), "{e}");
        assert!(parse(&serde_json::to_string(&vec!["x"; MAX_INPUTS]).unwrap()).is_ok());
        assert_eq!(
            serde_json::to_string(&EmbeddingInput::TokenLists(vec![vec![1]])).unwrap(),
            "[[1]]"
        );
    }

    #[test]
    fn replies_are_read_in_either_format_and_in_input_order() {
        let b64 = to_base64(&[0.5, -1.0]);
        let body = format!(
            r#"{{"object":"list","model":"m-1","data":[{{"index":1,"embedding":"{b64}"}},{{"index":0,"embedding":[0.25,1]}}],"usage":{{"prompt_tokens":4,"total_tokens":4}}}}"#
        );
        let r = parse_embeddings(body.as_bytes(), &request(texts(2))).unwrap();
        assert_eq!(r.vectors, vec![vec![0.25, 1.0], vec![0.5, -1.0]]);
        assert_eq!((r.model.as_str(), r.input_tokens), ("m-1", 4));
        // No usage: estimated from the input.
        let r = parse_embeddings(
            br#"{"data":[{"index":0,"embedding":[1]}]}"#,
            &request(EmbeddingInput::Tokens(vec![1, 2, 3])),
        )
        .unwrap();
        assert_eq!((r.model.as_str(), r.input_tokens), ("m", 3));
    }

    #[test]
    fn replies_that_do_not_match_the_request_are_malformed() {
        let one = request(texts(1));
        for bad in [
            r#"{"data":[]}"#,
            r#"{"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[1]}]}"#,
            r#"{"data":[{"index":3,"embedding":[1]}]}"#,
            r#"{"data":[{"index":0,"embedding":[]}]}"#,
            r#"{"data":[{"index":0,"embedding":"AAA"}]}"#,
            r#"{"data":[{"index":0,"embedding":[1e39]}]}"#,
            r#"{"data":[{"index":0,"embedding":"not base64!"}]}"#,
            r#"{"data":{}}"#,
            "{not json",
        ] {
            let e = parse_embeddings(bad.as_bytes(), &one).unwrap_err();
            assert_eq!(e.code(), "upstream_malformed", "{bad}: {e}");
        }
        // Two vectors for one input, within the caps: malformed, not too large.
        let e = parse_embeddings(
            br#"{"data":[{"index":0,"embedding":[1]},{"index":1,"embedding":[1]}]}"#,
            &one,
        )
        .unwrap_err();
        assert_eq!(e.code(), "upstream_malformed");
    }

    /// Anthropic and replay keep the trait's refusal; OpenAI-compatible providers embed,
    /// behind their breaker too. Nothing here reaches a network (port 9 is never called).
    #[tokio::test]
    async fn only_openai_compatible_providers_embed() {
        use super::super::ProviderConfig;
        let build = |kind: serde_json::Value| {
            serde_json::from_value::<ProviderConfig>(kind)
                .unwrap()
                .build(|p| p.to_path_buf(), None)
                .unwrap()
        };
        let dataset = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/gsm8k-dev.jsonl");
        let without = [
            serde_json::json!({"kind": "anthropic", "base_url": "http://127.0.0.1:9", "api_key_env": ""}),
            serde_json::json!({"kind": "replay", "dataset": dataset}),
        ];
        for config in without {
            let p = build(config.clone());
            assert!(!p.embeds(), "{config}");
            let e = p.embed(&request(texts(1))).await.unwrap_err();
            assert_eq!(e.code(), "unsupported_parameter", "{config}: {e}");
        }
        let openai =
            build(serde_json::json!({"kind": "openai", "base_url": "http://127.0.0.1:9/v1"}));
        assert!(openai.embeds());
    }

    #[test]
    fn oversized_replies_are_refused_while_read() {
        let one = request(texts(1));
        let wide = format!(
            r#"{{"data":[{{"index":0,"embedding":[{}]}}]}}"#,
            vec!["0"; MAX_DIMENSIONS + 1].join(",")
        );
        let e = parse_embeddings(wide.as_bytes(), &one).unwrap_err();
        assert_eq!(e.code(), "upstream_response_too_large", "{e}");
        let wide = format!(
            r#"{{"data":[{{"index":0,"embedding":"{}"}}]}}"#,
            to_base64(&vec![0.0; MAX_DIMENSIONS + 1])
        );
        let e = parse_embeddings(wide.as_bytes(), &one).unwrap_err();
        assert_eq!(e.code(), "upstream_response_too_large", "{e}");
        let item = r#"{"index":0,"embedding":[0]}"#;
        let many = format!(r#"{{"data":[{}]}}"#, vec![item; MAX_INPUTS + 1].join(","));
        let e = parse_embeddings(many.as_bytes(), &one).unwrap_err();
        assert_eq!(e.code(), "upstream_response_too_large", "{e}");
        // Few vectors, but too many values together.
        let vector = to_base64(&vec![0.0; MAX_DIMENSIONS]);
        let item = format!(r#"{{"index":0,"embedding":"{vector}"}}"#);
        let n = MAX_VALUES / MAX_DIMENSIONS + 1;
        let heavy = format!(r#"{{"data":[{}]}}"#, vec![item.as_str(); n].join(","));
        let e = parse_embeddings(heavy.as_bytes(), &request(texts(n))).unwrap_err();
        assert_eq!(e.code(), "upstream_response_too_large", "{e}");
    }
}
