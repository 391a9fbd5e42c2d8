{
  "targets": [
    {
      "target_name": "original_dst",
      "sources": ["original_dst.c"],
      "cflags": ["-O2", "-Wall"]
    },
    {
      "target_name": "shared_memory",
      "sources": ["shared_memory.c"],
      "cflags": ["-O2", "-Wall"]
    }
  ]
}
