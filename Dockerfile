# The gateway image used by docker-compose.yml: faregate and its dependencies, nothing fetched at run time.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY catalog ./catalog
COPY schemas ./schemas
COPY routes.yaml ./
RUN pip install --no-cache-dir .
EXPOSE 8080
CMD ["faregate", "serve", "--host", "0.0.0.0", "--port", "8080"]
