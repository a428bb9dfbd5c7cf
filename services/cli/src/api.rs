//! The API client: `ARKIV_API` and `ARKIV_TOKEN` (or `--api`, `--token`),
//! JSON in and out, problem documents turned into readable errors.

use anyhow::{anyhow, bail, Context};
use reqwest::Method;
use serde_json::Value;

#[derive(Debug)]
pub struct Api {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: Option<String>, token: Option<String>) -> anyhow::Result<Self> {
        let base = base
            .or_else(|| std::env::var("ARKIV_API").ok())
            .ok_or_else(|| anyhow!("no API address: set ARKIV_API (or --api), e.g. `source .run/env` after `make up`"))?;
        let token = token
            .or_else(|| std::env::var("ARKIV_TOKEN").ok())
            .filter(|t| !t.is_empty());
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http: reqwest::Client::new(),
        })
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let response = self.send(method, path, body).await?;
        if response.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        response.json().await.context("reading the API's answer")
    }

    /// The raw response of a successful call (for non-JSON bodies).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<reqwest::Response> {
        let token = self
            .token
            .as_deref()
            .ok_or_else(|| anyhow!("no API token: set ARKIV_TOKEN (or --token)"))?;
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the API at {}", self.base))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let problem: Value = response.json().await.unwrap_or(Value::Null);
        let detail = problem["detail"].as_str().unwrap_or("");
        let title = problem["title"]
            .as_str()
            .unwrap_or(status.canonical_reason().unwrap_or("error"));
        match problem["field"].as_str() {
            Some(field) => bail!("{title}: {field}: {detail}"),
            None => bail!("{title}: {detail}"),
        }
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.call(Method::POST, path, Some(body)).await
    }
}
