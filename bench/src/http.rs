//! A lean HTTP/1.1 client: one kept-alive connection per simulated browser
//! or app, straight on hyper, so the load generator spends as little of the
//! machine's CPU as possible (it shares the cores with the server).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::http::request::Builder;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// No request of the benchmark should take this long; one that does is an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn location(&self) -> Option<&str> {
        self.headers.get(header::LOCATION).and_then(|value| value.to_str().ok())
    }

    /// `(name, value)` of every `Set-Cookie`.
    pub fn set_cookies(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .filter_map(|cookie| cookie.split(';').next()?.trim().split_once('='))
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies().find(|(key, _)| *key == name).map(|(_, value)| value)
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or_default()
    }

    /// Fails with the status and the start of the body unless the status is `expected`.
    pub fn expect(&self, expected: StatusCode, what: &str) -> anyhow::Result<()> {
        if self.status != expected {
            let body: String = self.text().chars().take(300).collect();
            bail!("{what}: expected {expected}, got {}: {body}", self.status);
        }
        Ok(())
    }
}

pub struct Client {
    addr: SocketAddr,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Self {
        let host = HeaderValue::from_str(&addr.to_string()).unwrap_or(HeaderValue::from_static("localhost"));
        Self { addr, host, sender: None }
    }

    async fn connect(&self) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let stream = TcpStream::connect(self.addr).await.with_context(|| format!("connect to {}", self.addr))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// Sends the request on this client's connection (opening it when
    /// needed) and reads the whole answer. A failed connection is dropped
    /// and the next request opens a new one.
    pub async fn send(&mut self, request: Builder, body: Bytes) -> anyhow::Result<Reply> {
        let request = request.header(header::HOST, self.host.clone()).body(Full::new(body))?;
        match tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(request)).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(error)) => {
                self.sender = None;
                Err(error)
            }
            Err(_) => {
                self.sender = None;
                Err(anyhow!("no answer within {REQUEST_TIMEOUT:?}"))
            }
        }
    }

    async fn exchange(&mut self, request: Request<Full<Bytes>>) -> anyhow::Result<Reply> {
        if self.sender.is_none() {
            self.sender = Some(self.connect().await?);
        }
        let Some(sender) = self.sender.as_mut() else { bail!("no connection") };
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Reply { status: parts.status, headers: parts.headers, body })
    }

    pub async fn get(&mut self, path: &str, headers: &[(header::HeaderName, &str)]) -> anyhow::Result<Reply> {
        let mut request = Request::get(path);
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        self.send(request, Bytes::new()).await
    }

    /// POSTs an `application/x-www-form-urlencoded` body.
    pub async fn post_form(
        &mut self,
        path: &str,
        headers: &[(header::HeaderName, &str)],
        form: &[(&str, &str)],
    ) -> anyhow::Result<Reply> {
        let body = form_encode(form);
        let mut request = Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        self.send(request, Bytes::from(body)).await
    }
}

pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// The value of query parameter `name` in a URL or path.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes()).find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
}
