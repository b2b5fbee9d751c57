# Builds the static musl binary (the same command as README "Building") and
# ships it alone, FROM scratch, with CA certificates, as a non-root user.
# Configure it with B2K_* environment variables (README "Configuration").
FROM rust:1-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN cargo build --release --target x86_64-unknown-linux-musl \
 && ./target/x86_64-unknown-linux-musl/release/binlog2kafka --version

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /src/target/x86_64-unknown-linux-musl/release/binlog2kafka /binlog2kafka
COPY --from=build /src/conf/binlog2kafka.properties /etc/binlog2kafka.properties
# nobody:nogroup: the daemon needs no file system writes.
USER 65534:65534
# In a container the status page must listen beyond loopback.
ENV B2K_HTTP_LISTEN=0.0.0.0:9000
EXPOSE 9000
ENTRYPOINT ["/binlog2kafka"]
CMD ["run", "--config", "/etc/binlog2kafka.properties"]
