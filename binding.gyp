{
  "targets": [
    {
      "target_name": "ublkit",
      "sources": ["native/ublkit.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
