{
  "targets": [
    {
      "target_name": "probe",
      "sources": ["probe.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
