# icalproxy: pulls internal iCalendar feeds, serves leak-free per-client feeds.
#   docker build -t icalproxy .
#   docker run -d -p 8080:8080 -p 127.0.0.1:9090:9090 -v icalproxy-state:/var/lib/icalproxy \
#     -v "$PWD/config.yaml:/etc/icalproxy/config.yaml:ro" -v "$PWD/rules:/etc/icalproxy/rules:ro" icalproxy
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ICALPROXY_STATE_DIR=/var/lib/icalproxy

WORKDIR /app
COPY pyproject.toml README.md ./
COPY icalproxy ./icalproxy
RUN python -m pip install . \
 && useradd --system --uid 10001 --home-dir /var/lib/icalproxy --shell /usr/sbin/nologin icalproxy \
 && mkdir -p /var/lib/icalproxy /etc/icalproxy \
 && chown icalproxy /var/lib/icalproxy

COPY config.example.yaml /etc/icalproxy/config.yaml
COPY rules /etc/icalproxy/rules
COPY fixtures /etc/icalproxy/fixtures

USER icalproxy
VOLUME ["/var/lib/icalproxy"]
# 8080: the feeds (public, behind your TLS proxy). 9090: /readyz and /metrics for ops only;
# publish it on the host's loopback (-p 127.0.0.1:9090:9090), never to the internet.
EXPOSE 8080 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["icalproxy"]
CMD ["serve", "--config", "/etc/icalproxy/config.yaml", "--listen", "0.0.0.0:8080", "--ops-listen", "0.0.0.0:9090"]
