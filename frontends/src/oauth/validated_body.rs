//! Request bodies of the email/password endpoints, validated as Better Auth
//! validates them. The shared bounded body filter reads the JSON (over 16 KiB
//! 413, not JSON 415, unparsable 400 `INVALID_BODY`, as on every route); a
//! well-formed body of the wrong shape (a missing field, a number for a
//! string) is then 400 `VALIDATION_ERROR` naming the field, `[body.email] …`.
//! Unknown fields are ignored. Nothing runs before the whole body passed.

use serde::de::DeserializeOwned;
use serde_json::Value;
use warp::{Filter, Rejection};

use super::email_errors::validation_error;
use crate::common::{json_body, ApiError};

/// `value` shaped into `T`, or `VALIDATION_ERROR` naming where it went wrong.
pub(crate) fn shape<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    // serde would also read a struct from an array of its fields in order.
    if !value.is_object() {
        return Err(validation_error("", "expected an object"));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        validation_error(&field, e.into_inner())
    })
}

/// A required JSON body shaped into `T`.
pub(crate) fn validated_body<T: DeserializeOwned + Send>(
) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    json_body::<Value>()
        .and_then(|value: Value| async move { shape(value).map_err(ApiError::reject) })
}

#[cfg(test)]
mod tests {
    use super::super::wire::SignInEmailBody;
    use super::*;

    #[test]
    fn a_wrong_shape_names_the_field() {
        let e = shape::<SignInEmailBody>(serde_json::json!({"email": 1, "password": "x"}))
            .err()
            .unwrap();
        assert_eq!(e.code, "validation_error");
        assert!(e.message.starts_with("[body.email] "), "{}", e.message);
        let e = shape::<SignInEmailBody>(serde_json::json!({"email": "a@b.example"}))
            .err()
            .unwrap();
        assert!(e.message.contains("password"), "{}", e.message);
        let e = shape::<SignInEmailBody>(serde_json::json!([1]))
            .err()
            .unwrap();
        assert!(e.message.starts_with("[body] "), "{}", e.message);
        let ok = shape::<SignInEmailBody>(
            serde_json::json!({"email": "a@b.example", "password": "x", "extra": [1]}),
        );
        assert!(ok.is_ok());
    }
}
