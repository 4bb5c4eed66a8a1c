//! Request bodies: size limits and JSON parsing that never quotes the body back.

/// A body that could not be read as the expected JSON.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// Where the body broke, never what it contained (serde's own messages quote values, and a
    /// value may be a processing number).
    #[error("Malformed request: {what} (line {line}, column {column})")]
    Malformed {
        what: &'static str,
        line: usize,
        column: usize,
    },
}

/// Parses a JSON body of at most `limit` bytes.
pub fn parse_json<'a, T: serde::Deserialize<'a>>(
    body: &'a [u8],
    limit: usize,
) -> Result<T, BodyError> {
    if body.len() > limit {
        return Err(BodyError::TooLarge { limit });
    }
    serde_json::from_slice(body).map_err(|error| BodyError::Malformed {
        what: match error.classify() {
            serde_json::error::Category::Data => "a field has the wrong type or is out of range",
            serde_json::error::Category::Eof => "the JSON body ends early",
            _ => "the body is not valid JSON",
        },
        line: error.line(),
        column: error.column(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Number {
        #[allow(dead_code)]
        n: u32,
    }

    #[test]
    fn errors_say_where_not_what() {
        let error = parse_json::<Number>(br#"{"n": "99999910"}"#, 100).expect_err("wrong type");
        assert!(matches!(
            error,
            BodyError::Malformed {
                what: "a field has the wrong type or is out of range",
                ..
            }
        ));
        assert!(!error.to_string().contains("9999"));
        assert_eq!(
            parse_json::<Number>(b"{\"n\": 1}", 3).err(),
            Some(BodyError::TooLarge { limit: 3 })
        );
        assert!(matches!(
            parse_json::<Number>(b"{\"n\": ", 100),
            Err(BodyError::Malformed {
                what: "the JSON body ends early",
                ..
            })
        ));
    }
}
