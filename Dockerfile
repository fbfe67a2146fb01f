FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY backend ./backend
COPY frontend ./frontend
COPY static ./static
RUN pip install --no-cache-dir .
ENV EXPORTHUB_HOST=0.0.0.0 EXPORTHUB_DATA_DIR=/data
EXPOSE 8000
CMD ["exporthub", "serve"]
