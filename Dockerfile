# nerve: one image for every role (nerve ingest | correlate | sink | setup | run).
# The sources are TypeScript run through tsx (a runtime dependency), so there is no build step; the build
# stage exists for better-sqlite3, whose native addon needs python3, make and g++ when no prebuilt fits.
# Node 24, a maintained LTS (Node 20 reached its end of life in April 2026); the code also runs on Node 20.
FROM node:24-bookworm-slim AS dependencies
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    NERVE_HTTP_HOST=0.0.0.0 \
    NERVE_HTTP_PORT=8080 \
    NERVE_DATA_DIR=/data
WORKDIR /app
COPY --from=dependencies /app/node_modules ./node_modules
COPY . .
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=6 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.NERVE_HTTP_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "--max-semi-space-size=64", "bin/nerve.mjs"]
CMD ["run"]
