//! Every error the API returns is an RFC 9457 problem document
//! (`application/problem+json`) that says what went wrong and, for bad
//! input, which field. The mapping from error to status is this one match.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing, unknown, expired or revoked API token")]
    Unauthenticated,
    /// Also what callers outside their scope get, so that nothing leaks
    /// whether a resource exists.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error("{message}")]
    Conflict {
        field: Option<String>,
        message: String,
    },
    #[error("the account is locked until {until}")]
    Locked { until: String },
    /// The provider refused or failed; `detail` says what to do.
    #[error("{detail}")]
    Provider { detail: String },
    /// A service Arkiv depends on is down; `0` says what to do.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }

    /// The outcome recorded in the audit log for this failure.
    pub fn audit_outcome(&self) -> arkiv_db::audit::Outcome {
        match self {
            ApiError::Unauthenticated | ApiError::NotFound(_) | ApiError::Locked { .. } => {
                arkiv_db::audit::Outcome::Denied
            }
            _ => arkiv_db::audit::Outcome::Failed,
        }
    }
}

impl From<arkiv_db::sea_orm::DbErr> for ApiError {
    fn from(e: arkiv_db::sea_orm::DbErr) -> Self {
        ApiError::Internal(format!("database: {e}"))
    }
}

/// A problem document (RFC 9457).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request field at fault, for bad input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, title, field) = match &self {
            ApiError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
                None,
            ),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found", None),
            ApiError::Invalid { field, .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-input",
                "Invalid input",
                Some(field.clone()),
            ),
            ApiError::Conflict { field, .. } => {
                (StatusCode::CONFLICT, "conflict", "Conflict", field.clone())
            }
            ApiError::Locked { .. } => (StatusCode::LOCKED, "locked", "Account locked", None),
            ApiError::Provider { .. } => (
                StatusCode::BAD_GATEWAY,
                "provider",
                "The provider refused or failed",
                None,
            ),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Temporarily unavailable",
                None,
            ),
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                    None,
                )
            }
        };
        let problem = Problem {
            kind: format!("https://arkiv.dev/problems/{kind}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            field,
        };
        let mut response =
            (status, serde_json::to_string(&problem).unwrap_or_default()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// JSON bodies whose syntax errors become problem documents naming the
/// field, instead of axum's plain-text rejection.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::invalid("body", e.to_string()))?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(de).map(Json).map_err(|e| {
            let path = e.path().to_string();
            let message = e.inner().to_string();
            // serde reports a missing field at its parent's path; name the
            // field itself ("missing field `admin_email` at line 1 ...").
            let missing = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split_once('`'))
                .map(|(name, _)| name.to_owned());
            let field = match (path.as_str(), missing) {
                (".", Some(name)) => name,
                (".", None) => "body".to_owned(),
                (_, Some(name)) => format!("{path}.{name}"),
                (_, None) => path,
            };
            ApiError::invalid(&field, message)
        })
    }
}
