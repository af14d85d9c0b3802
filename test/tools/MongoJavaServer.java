// test/tools/MongoJavaServer.java - the launcher of the stack's second
// MongoDB-compatible server: de.bwaldvogel:mongo-java-server with its
// in-memory backend.  test/stack.sh fetches the library from Maven Central,
// compiles this file next to it under .stack/dist/ and runs it.
//
//   java -cp CLASSES:LIB/* MongoJavaServer PORT [HOST]   (HOST: 127.0.0.1)
//
// Serves until the process is killed; on SIGTERM it closes the listener and
// every connection.  Nothing is persisted.

import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;

public final class MongoJavaServer {
	public static void main(String[] args) throws InterruptedException {
		if (args.length < 1 || args.length > 2) {
			System.err.println("usage: MongoJavaServer PORT [HOST]");
			System.exit(2);
		}
		int port = Integer.parseInt(args[0]);
		String host = args.length > 1 ? args[1] : "127.0.0.1";

		MongoServer server = new MongoServer(new MemoryBackend());
		try {
			server.bind(host, port);
		} catch (RuntimeException e) {
			// the Netty threads would keep a failed server's JVM alive
			System.err.println("cannot listen on " + host + ":" + port + ": " + e);
			server.shutdownNow();
			System.exit(1);
		}
		Runtime.getRuntime().addShutdownHook(new Thread(server::shutdownNow));
		System.out.println("mongo-java-server listening on " + host + ":" + port);
		Thread.currentThread().join();
	}
}
