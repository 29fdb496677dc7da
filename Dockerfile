# The image fly.toml builds: the softphone's Twilio Voice SDK (npm, as package-lock.json pins it), the pinned
# runtime dependencies, then the bridge itself.
FROM node:20-slim AS sdk
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
COPY pyproject.toml README.md ./
COPY bridge ./bridge
COPY webhooks ./webhooks
COPY schemas ./schemas
RUN pip install --no-cache-dir --no-deps .
# Served at /softphone/sdk/twilio.min.js; the bridge looks for it under the working directory.
COPY --from=sdk /build/node_modules/@twilio/voice-sdk/dist ./node_modules/@twilio/voice-sdk/dist
EXPOSE 8080
# SIGTERM (fly.toml kill_signal) lets the bridge finish in-flight work; it exits within 10 s.
CMD ["bridge", "serve"]
