FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv PATH="/opt/venv/bin:$PATH"
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock ./
# --build-arg EXTRAS="--extra tracing" adds the OpenTelemetry SDK (README.md, Observability).
ARG EXTRAS=""
RUN uv sync --frozen --no-dev --no-install-project $EXTRAS
COPY . .
RUN DJANGO_DEBUG=false python manage.py collectstatic --noinput
RUN useradd --system --uid 1000 app && chown -R app /app
USER app
EXPOSE 8000
CMD ["gunicorn", "intelliwiz_config.wsgi", "--bind", "0.0.0.0:8000"]
