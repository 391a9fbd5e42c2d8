# The one Trellis image: `trellis control`, `trellis proxy` (sidecars and gateways), and the
# injected init container's `trellis capture` (iptables). Runs as uid/gid 1337, the proxy's
# identity that the capture rules exempt; only the init container runs as root (NET_ADMIN).
#   docker build -t trellis:0.1.0 .
FROM node:24-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
COPY scripts/build-native.ts scripts/build-native.ts
COPY native native
RUN npm ci --omit=dev
COPY bin bin
COPY src src
COPY examples examples
# Tests are not shipped.
RUN find src -name '*.test.ts' -delete

FROM node:24-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends iptables iproute2 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 1337 trellis && useradd --uid 1337 --gid 1337 --no-create-home --shell /usr/sbin/nologin trellis
WORKDIR /app
COPY --from=build /app /app
RUN printf '#!/bin/sh\nexec node /app/bin/trellis.js "$@"\n' > /usr/local/bin/trellis && chmod 0755 /usr/local/bin/trellis
USER 1337:1337
# 15010 xDS, 15014 monitoring, 15017 webhook, 15000 admin, 15001/15006 capture, 15020 status, 15021 health, 15090 metrics
EXPOSE 15010 15014 15017 15000 15001 15006 15020 15021 15090
ENTRYPOINT ["trellis"]
CMD ["--help"]
