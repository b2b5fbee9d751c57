# Builds the static musl binary and ships it alone. Configure with B2K_*
# environment variables (see README "Configuration").
FROM rust:1-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN cargo build --release --target x86_64-unknown-linux-musl

FROM scratch
COPY --from=build /src/target/x86_64-unknown-linux-musl/release/binlog2kafka /binlog2kafka
COPY --from=build /src/conf/binlog2kafka.properties /etc/binlog2kafka.properties
USER 65534:65534
ENTRYPOINT ["/binlog2kafka"]
CMD ["run", "--config", "/etc/binlog2kafka.properties"]
