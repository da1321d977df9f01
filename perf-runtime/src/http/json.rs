//! JSON helpers over [`HttpClient::send`]: the common case in one call.

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Uri, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::client::{host_name, masked};
use super::{HttpClient, HttpError, HttpResponse};

impl HttpClient {
    /// `GET url`, retried as [`send`](Self::send) does.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send); [`HttpError::InvalidUrl`] for a bad URL.
    pub async fn get(&self, url: &str) -> Result<HttpResponse, HttpError> {
        self.send(request(Method::GET, url, Bytes::new(), None)?)
            .await
    }

    /// `GET url` and decode a 2xx JSON body.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get), plus [`HttpError::Status`] for a non-2xx
    /// status, [`HttpError::ResponseTooLarge`] and [`HttpError::Json`].
    pub async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, HttpError> {
        self.get(url).await?.error_for_status()?.json().await
    }

    /// `POST url` with `body` as JSON, and decode a 2xx JSON answer. A POST
    /// is not retried after it may have reached the server; build the
    /// request with [`RetryNonIdempotent`](super::RetryNonIdempotent) and
    /// [`send`](Self::send) it when a repeat is harmless.
    ///
    /// # Errors
    ///
    /// As [`get_json`](Self::get_json); [`HttpError::Json`] when `body`
    /// cannot be encoded.
    pub async fn post_json<B, T>(&self, url: &str, body: &B) -> Result<T, HttpError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        let encoded = serde_json::to_vec(body).map_err(|source| HttpError::Json {
            host: url
                .parse()
                .ok()
                .and_then(|uri| host_name(&uri).ok().map(String::from))
                .unwrap_or_default(),
            source,
        })?;
        let request = request(
            Method::POST,
            url,
            Bytes::from(encoded),
            Some("application/json"),
        )?;
        self.send(request).await?.error_for_status()?.json().await
    }
}

fn request(
    method: Method,
    url: &str,
    body: Bytes,
    content_type: Option<&'static str>,
) -> Result<Request<Bytes>, HttpError> {
    let uri = url.parse::<Uri>().map_err(|error| HttpError::InvalidUrl {
        url: masked(url),
        reason: error.to_string(),
    })?;
    // Built in place rather than through `Request::builder`, whose checks
    // are for names and values that are not known to be valid.
    let mut request = Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    if let Some(content_type) = content_type {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    Ok(request)
}
