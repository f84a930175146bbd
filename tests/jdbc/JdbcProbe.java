// What a JVM tool sees through the Arrow Flight SQL JDBC driver: run by
// tests/python/test_jdbc.py, which starts the server and checks the answers.
//
// Usage: java -cp DRIVER_JAR:CLASSES JdbcProbe JDBC_URL CHECK...
// A "cancel:SQL" check runs SQL and, when a line arrives on stdin (the test
// sends it once the server's SageMaker calls show the query running), calls
// Statement.cancel() and answers how the query ended.
// Prints one JSON object a line: {"check": NAME, "ok": true, "value": ...}
// or {"check": NAME, "ok": false, "error": "Class: message"}.

import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

public final class JdbcProbe {
    private JdbcProbe() {}

    public static void main(String[] args) throws Exception {
        String url = args[0];
        Connection connection = DriverManager.getConnection(url);
        try {
            for (String check : Arrays.copyOfRange(args, 1, args.length)) {
                String line;
                try {
                    line = "{\"check\": " + json(check) + ", \"ok\": true, \"value\": "
                            + json(run(connection, check)) + "}";
                } catch (Exception e) {
                    line = "{\"check\": " + json(check) + ", \"ok\": false, \"error\": "
                            + json(e.getClass().getSimpleName() + ": " + e.getMessage()) + "}";
                }
                System.out.println(line);
                System.out.flush();
            }
        } finally {
            try {
                connection.close();
            } catch (Exception e) {
                // Driver 18.3 closes its channel before it sends CloseSession
                // for a connection that set session options (catalog=), so
                // close fails with "UNAVAILABLE: Channel shutdown invoked"
                // whatever the server does. Said on stderr, not an answer.
                System.err.println("close: " + e.getMessage());
            }
        }
    }

    /** One check: a name, or "query:SQL", or "prepared:SQL|param|param...". */
    private static Object run(Connection connection, String check) throws Exception {
        if (check.startsWith("query:")) {
            try (Statement statement = connection.createStatement();
                    ResultSet rows = statement.executeQuery(check.substring("query:".length()))) {
                return rows(rows);
            }
        }
        if (check.startsWith("objects:")) {
            try (Statement statement = connection.createStatement();
                    ResultSet rows = statement.executeQuery(check.substring("objects:".length()))) {
                return objects(rows);
            }
        }
        if (check.startsWith("cancel:")) {
            return cancelled(connection, check.substring("cancel:".length()));
        }
        if (check.startsWith("prepared:")) {
            String[] parts = check.substring("prepared:".length()).split("\\|", -1);
            try (PreparedStatement statement = connection.prepareStatement(parts[0])) {
                for (int i = 1; i < parts.length; i++) {
                    bind(statement, i, parts[i]);
                }
                try (ResultSet rows = statement.executeQuery()) {
                    return rows(rows);
                }
            }
        }
        DatabaseMetaData meta = connection.getMetaData();
        switch (check) {
            case "session":
                Map<String, Object> session = new TreeMap<>();
                session.put("catalog", connection.getCatalog());
                session.put("schema", connection.getSchema());
                return session;
            case "metadata":
                return everyGetter(meta);
            case "catalogs":
                return rows(meta.getCatalogs());
            case "schemas":
                return rows(meta.getSchemas());
            case "tables":
                return rows(meta.getTables(null, null, "%", null));
            case "columns":
                return rows(meta.getColumns(null, "aws", "sagemaker_compilation_job", "%"));
            case "type_info":
                return rows(meta.getTypeInfo());
            case "primary_keys":
                return rows(meta.getPrimaryKeys(null, "aws", "sagemaker_compilation_job"));
            case "imported_keys":
                return rows(meta.getImportedKeys(null, "aws", "sagemaker_compilation_job"));
            case "exported_keys":
                return rows(meta.getExportedKeys(null, "aws", "sagemaker_compilation_job"));
            case "result_metadata":
                try (Statement statement = connection.createStatement();
                        ResultSet rows = statement.executeQuery(
                                "SELECT compilation_job_name, creation_time, tags FROM aws.sagemaker_compilation_job LIMIT 1")) {
                    ResultSetMetaData columns = rows.getMetaData();
                    List<Object> out = new ArrayList<>();
                    for (int i = 1; i <= columns.getColumnCount(); i++) {
                        Map<String, Object> column = new TreeMap<>();
                        column.put("name", columns.getColumnName(i));
                        column.put("label", columns.getColumnLabel(i));
                        column.put("type_name", columns.getColumnTypeName(i));
                        column.put("table", columns.getTableName(i));
                        column.put("schema", columns.getSchemaName(i));
                        column.put("read_only", columns.isReadOnly(i));
                        column.put("nullable", columns.isNullable(i));
                        out.add(column);
                    }
                    return out;
                }
            default:
                throw new IllegalArgumentException("no check named " + check);
        }
    }

    /** How long a cancelled query may take to end. */
    private static final long CANCEL_WAIT_MS = 30_000;

    /**
     * Runs {@code sql} on a thread of its own, cancels it when stdin gives a
     * line, and answers what executeQuery did ("threw" and "rows", or
     * "ended": false if it still ran CANCEL_WAIT_MS later) and how long the
     * cancel call took.
     */
    private static Map<String, Object> cancelled(Connection connection, String sql) throws Exception {
        // Written by the query's thread, read after it ended (or not).
        Map<String, Object> out = new java.util.concurrent.ConcurrentSkipListMap<>();
        try (Statement statement = connection.createStatement()) {
            Thread query = new Thread(() -> {
                try (ResultSet rows = statement.executeQuery(sql)) {
                    out.put("rows", rows(rows).size());
                } catch (Exception e) {
                    out.put("threw", e.getClass().getSimpleName() + ": " + e.getMessage());
                }
            });
            query.start();
            if (new java.io.BufferedReader(new java.io.InputStreamReader(System.in)).readLine() == null) {
                throw new IllegalStateException("stdin closed before the cancel");
            }
            long started = System.nanoTime();
            statement.cancel();
            out.put("cancel_ms", (System.nanoTime() - started) / 1_000_000);
            query.join(CANCEL_WAIT_MS);
            out.put("ended", !query.isAlive());
        }
        return out;
    }

    /**
     * Every DatabaseMetaData method without parameters that answers a
     * boolean, an int or a String, as a tool that reads them all would:
     * each name to its value, or to "!Class: message" when it threw.
     */
    private static Map<String, Object> everyGetter(DatabaseMetaData meta) {
        Map<String, Object> out = new TreeMap<>();
        Method[] methods = DatabaseMetaData.class.getMethods();
        Arrays.sort(methods, Comparator.comparing(Method::getName));
        for (Method method : methods) {
            Class<?> type = method.getReturnType();
            boolean simple = type == boolean.class || type == int.class || type == String.class;
            if (method.getParameterCount() != 0 || !simple || Modifier.isStatic(method.getModifiers())) {
                continue;
            }
            try {
                out.put(method.getName(), method.invoke(meta));
            } catch (Exception e) {
                Throwable cause = e.getCause() == null ? e : e.getCause();
                out.put(method.getName(), "!" + cause.getClass().getSimpleName() + ": " + cause.getMessage());
            }
        }
        for (int from : new int[] {java.sql.Types.INTEGER, java.sql.Types.VARCHAR}) {
            for (int to : new int[] {java.sql.Types.BIGINT, java.sql.Types.VARCHAR, java.sql.Types.TIMESTAMP}) {
                String name = "supportsConvert(" + from + "," + to + ")";
                try {
                    out.put(name, meta.supportsConvert(from, to));
                } catch (Exception e) {
                    out.put(name, "!" + e.getClass().getSimpleName() + ": " + e.getMessage());
                }
            }
        }
        return out;
    }

    /**
     * Binds parameter {@code index}: "i:42" an integer (setLong), "t:ISO
     * instant" a timestamp (setTimestamp), "s:text" or anything else a
     * string (setString).
     */
    private static void bind(PreparedStatement statement, int index, String value) throws Exception {
        if (value.startsWith("i:")) {
            statement.setLong(index, Long.parseLong(value.substring(2)));
        } else if (value.startsWith("t:")) {
            statement.setTimestamp(index, java.sql.Timestamp.from(java.time.Instant.parse(value.substring(2))));
        } else if (value.startsWith("s:")) {
            statement.setString(index, value.substring(2));
        } else {
            statement.setString(index, value);
        }
    }

    /**
     * The first row's values as getObject gives them: each column's Java
     * class and value; a timestamp also as the instant it names (whatever
     * the JVM's time zone).
     */
    private static Map<String, Object> objects(ResultSet rows) throws Exception {
        Map<String, Object> out = new TreeMap<>();
        try (ResultSet r = rows) {
            ResultSetMetaData columns = r.getMetaData();
            if (!r.next()) {
                return out;
            }
            for (int i = 1; i <= columns.getColumnCount(); i++) {
                Map<String, Object> column = new TreeMap<>();
                Object value;
                try {
                    value = r.getObject(i);
                } catch (RuntimeException e) {
                    // Driver 18.3 has no getObject for a timestamp with a
                    // time zone ("not implemented"); getTimestamp reads it.
                    column.put("getObject", e.getClass().getSimpleName() + ": " + e.getMessage());
                    value = r.getTimestamp(i);
                }
                column.put("class", value == null ? null : value.getClass().getName());
                column.put("value", value == null ? null : value.toString());
                if (value instanceof java.sql.Timestamp) {
                    column.put("instant", ((java.sql.Timestamp) value).toInstant().toString());
                }
                out.put(columns.getColumnLabel(i), column);
            }
        }
        return out;
    }

    /** Every row as a map of column label to value (as a string). */
    private static List<Object> rows(ResultSet rows) throws Exception {
        List<Object> out = new ArrayList<>();
        try (ResultSet r = rows) {
            ResultSetMetaData columns = r.getMetaData();
            while (r.next()) {
                Map<String, Object> row = new TreeMap<>();
                for (int i = 1; i <= columns.getColumnCount(); i++) {
                    Object value = r.getObject(i);
                    row.put(columns.getColumnLabel(i), value == null ? null : value.toString());
                }
                out.add(row);
            }
        }
        return out;
    }

    private static String json(Object value) {
        if (value == null) {
            return "null";
        }
        if (value instanceof Boolean || value instanceof Integer) {
            return value.toString();
        }
        if (value instanceof Map) {
            StringBuilder out = new StringBuilder("{");
            for (Map.Entry<?, ?> entry : ((Map<?, ?>) value).entrySet()) {
                if (out.length() > 1) {
                    out.append(", ");
                }
                out.append(json(entry.getKey().toString())).append(": ").append(json(entry.getValue()));
            }
            return out.append("}").toString();
        }
        if (value instanceof List) {
            StringBuilder out = new StringBuilder("[");
            for (Object item : (List<?>) value) {
                if (out.length() > 1) {
                    out.append(", ");
                }
                out.append(json(item));
            }
            return out.append("]").toString();
        }
        StringBuilder out = new StringBuilder("\"");
        for (char c : value.toString().toCharArray()) {
            switch (c) {
                case '"': out.append("\\\""); break;
                case '\\': out.append("\\\\"); break;
                case '\n': out.append("\\n"); break;
                case '\r': out.append("\\r"); break;
                case '\t': out.append("\\t"); break;
                default:
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
            }
        }
        return out.append("\"").toString();
    }
}
