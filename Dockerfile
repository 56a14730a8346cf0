# The loadgate image, as deploy/kubernetes runs it:
#   docker build -t registry.example.com/loadgate:1.2.3 . && docker push registry.example.com/loadgate:1.2.3
# Two stages: build with the Rust toolchain, run on a slim Debian with /bin/sh (the Jobs'
# commands use it for $((JOB_COMPLETION_INDEX+1)) and for the merge's glob).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p loadgate && cp target/release/loadgate /usr/local/bin/loadgate

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /work --create-home loadgate
COPY --from=build /usr/local/bin/loadgate /usr/local/bin/loadgate
USER 10001
WORKDIR /work
ENTRYPOINT ["loadgate"]
CMD ["--help"]
