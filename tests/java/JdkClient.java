// A real JDK 17 HttpClient (java.net.http), the kind of client AJO's sender is, for the tests.
//
//   java JdkClient IDENTITY.p12|- PASSWORD TRUST.pem PROTOCOLS METHOD URL [URL ...]
//
// IDENTITY.p12: the PKCS12 identity it presents when a server asks ("-": none). TRUST.pem: the CAs it trusts
// for the server's certificate. PROTOCOLS: e.g. TLSv1.3 or TLSv1.2,TLSv1.3. METHOD: GET or POST (a small
// JSON body). HTTP/1.1, a new HttpClient (and connection) per URL.
// One line per URL, tab-separated:  URL  status  STATUS  BASE64(body)   or   URL  error  BASE64(exception chain)
// The JDK's own TLS (JSSE) does everything: it offers no post_handshake_auth in its ClientHello, and it
// answers a TLS 1.2 server's renegotiation.

import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.Base64;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.TrustManagerFactory;

public final class JdkClient {
    public static void main(String[] args) throws Exception {
        char[] password = args[1].toCharArray();
        KeyManager[] keys = null;
        if (!args[0].equals("-")) {
            KeyStore identity = KeyStore.getInstance("PKCS12");
            try (InputStream in = Files.newInputStream(Path.of(args[0]))) {
                identity.load(in, password);
            }
            KeyManagerFactory factory = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            factory.init(identity, password);
            keys = factory.getKeyManagers();
        }
        KeyStore trustStore = KeyStore.getInstance("PKCS12");
        trustStore.load(null, null);
        int index = 0;
        try (InputStream in = Files.newInputStream(Path.of(args[2]))) {
            for (Certificate cert : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                trustStore.setCertificateEntry("ca" + index++, cert);
            }
        }
        TrustManagerFactory trust = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        trust.init(trustStore);
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(keys, trust.getTrustManagers(), null);
        SSLParameters parameters = context.getDefaultSSLParameters();
        parameters.setProtocols(args[3].split(","));
        String method = args[4];
        for (int at = 5; at < args.length; at++) {
            System.out.println(args[at] + "\t" + fetch(context, parameters, method, args[at]));
            System.out.flush();
        }
    }

    private static String fetch(SSLContext context, SSLParameters parameters, String method, String url) {
        HttpClient client = HttpClient.newBuilder()
                .sslContext(context)
                .sslParameters(parameters)
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(10))
                .build();
        HttpRequest.BodyPublisher body = method.equals("GET")
                ? HttpRequest.BodyPublishers.noBody()
                : HttpRequest.BodyPublishers.ofString("{\"profile\":\"lab\"}");
        HttpRequest request = HttpRequest.newBuilder(URI.create(url))
                .timeout(Duration.ofSeconds(10))
                .header("Content-Type", "application/json")
                .method(method, body)
                .build();
        try {
            HttpResponse<String> response = client.send(request, HttpResponse.BodyHandlers.ofString());
            return "status\t" + response.statusCode() + "\t" + encode(response.body());
        } catch (Exception e) {
            StringBuilder chain = new StringBuilder();
            for (Throwable t = e; t != null; t = t.getCause()) {
                chain.append(chain.length() == 0 ? "" : "; caused by ").append(t.getClass().getName())
                        .append(": ").append(t.getMessage());
            }
            return "error\t" + encode(chain.toString());
        }
    }

    private static String encode(String text) {
        return Base64.getEncoder().encodeToString(text.getBytes(StandardCharsets.UTF_8));
    }
}
