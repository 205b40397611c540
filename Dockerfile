# syntax=docker/dockerfile:1
# mcp-session-proxy as a sidecar: configure it with environment variables (see README), e.g.
#   docker run -e UPSTREAM_URL=http://127.0.0.1:8000/mcp -p 8080:8080 mcp-session-proxy
# test/integration/container-stage.test.ts replays the final stage below outside Docker.

# Build stage: all dependencies, compile TypeScript to dist/.
FROM node:26-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
# Without install scripts: they would only fetch the Node binaries the tests run on (the image's
# Node compiles); then compile src/ to dist/ (the prepare script's job in a plain npm ci).
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts && npm run build

# Final stage: production dependencies and the compiled proxy only, run as a non-root user.
FROM node:26-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts
COPY --from=build /app/dist ./dist
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + (process.env.HEALTH_PATH || '/healthz')).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/main.js"]
