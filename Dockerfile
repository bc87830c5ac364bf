# netloop in a container: built in one stage, run as a non-root user from a
# slim image in the next (no compiler, no sources).
#
#   docker build -t netloop .
#   docker run --rm -p 127.0.0.1:8080:8080 netloop                 # the chat server
#   docker run --rm -p 127.0.0.1:7000:7000 netloop serve echo --host 0.0.0.0 --port 7000
#
# Inside the container the server must bind 0.0.0.0 to be reachable through
# the published port; it logs a warning that nothing is encrypted. Publish
# on 127.0.0.1 as above unless other hosts should reach it.

# The toolchain is the rust-version of Cargo.toml (tests/deploy.rs checks).
FROM rust:1.88-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY examples ./examples
RUN cargo build --release --locked --bin netloop

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin netloop
COPY --from=build /src/target/release/netloop /usr/local/bin/netloop
USER 10001:10001
EXPOSE 8080
# The graceful stop: connections are ended and given --grace to close.
# `docker stop` waits 10 s by default, longer than the 5 s grace.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/netloop"]
CMD ["serve", "chat", "--host", "0.0.0.0", "--port", "8080", "--grace", "5s"]
