# sluice container image. Not built in CI here (no Docker engine on the build
# machine); kept correct by reading. Build: docker build -t sluice .
#
# Production runs compiled JavaScript (dist/, `npm run build`: less memory
# and a faster start than type stripping), so a build stage with the
# devDependencies compiles it and the runtime stage gets dist/ plus production
# dependencies only (no typescript, node@24, eslint...).

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --no-audit --no-fund
COPY src ./src
COPY workers ./workers
RUN npx tsc -p tsconfig.build.json
# The upload page at / (esbuild, a devDependency, bundles it into public/build/).
COPY scripts/build-web.ts ./scripts/
COPY public ./public
RUN node scripts/build-web.ts

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only. sharp's prebuilt binary (@img/sharp-linux-x64,
# with its bundled libvips) is an optional dependency picked for this platform:
# glibc (bookworm), so no build toolchain is needed.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:24-bookworm-slim
# jemalloc instead of glibc malloc: worker threads × libuv threads × libvips
# threads fragment glibc's heap; docs/jobs.md measured about half the RSS under
# image jobs with jemalloc (bench:pool-rss). MALLOC_CONF returns freed pages within a
# second and purges in the background: 400 image jobs peaked at 259 MiB and ended at
# 186 (glibc 577/539, plain jemalloc 329/241; bench:pool-rss, 2026-12-03).
# The library's directory names the architecture (x86_64-linux-gnu, aarch64-linux-gnu):
# a fixed link keeps LD_PRELOAD right on both.
RUN apt-get update && apt-get install -y --no-install-recommends libjemalloc2 && rm -rf /var/lib/apt/lists/* \
 && ln -s "$(dpkg -L libjemalloc2 | grep '/libjemalloc\.so\.2$')" /usr/local/lib/libjemalloc.so.2
# HOST=0.0.0.0 needs authentication configured (SLUICE_AUTH_*): sluice refuses
# to listen off loopback without it (README, "Security").
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    SLUICE_DATA_DIR=/data \
    LD_PRELOAD=/usr/local/lib/libjemalloc.so.2 \
    MALLOC_CONF=background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist ./dist
COPY --from=build /app/public ./public
RUN mkdir -p /data && chown node:node /data
# The image's own unprivileged user; the code stays root-owned and read-only to it.
USER node
EXPOSE 8080
VOLUME ["/data"]
# /health never touches storage: a slow bucket must not get the container killed.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Exec form: node is PID 1 and receives SIGTERM itself, which starts the graceful
# shutdown (SLUICE_SHUTDOWN_GRACE_MS; give `docker stop -t` / terminationGracePeriodSeconds
# more than drain delay + grace + abort). node reaps its own cluster workers.
STOPSIGNAL SIGTERM
# A 1 MiB young generation keeps upload buffers from lingering (see package.json "start").
CMD ["node", "--max-semi-space-size=1", "dist/src/server.js"]
