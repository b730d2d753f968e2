package store

func cleanupBenchDB() {}
