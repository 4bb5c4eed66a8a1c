//! The handler's own work per `POST /api/register`, as COCOA sends it (an empty body): the route
//! check and the JSON of COCOA's fixed dummy answer (a 556-character secret). There is no port:
//! the function stores nothing and calls nothing.
//!
//! `cargo bench -p register --bench register`

use criterion::{Criterion, criterion_group, criterion_main};
use lambda_http::{Body, Request};

fn request() -> Request {
    let mut request = Request::new(Body::Empty);
    *request.method_mut() = lambda_http::http::Method::POST;
    *request.uri_mut() =
        lambda_http::http::Uri::from_static("https://api.example.invalid/api/register");
    request
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    // Sanity: the bench request gets the 200 with the dummy values.
    let response = runtime
        .block_on(register::handle(request()))
        .expect("infallible");
    assert_eq!(response.status(), 200);
    assert!(response.body().len() > 556);
    c.bench_function("register, dummy answer, handler only", |b| {
        b.to_async(&runtime).iter(|| register::handle(request()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
