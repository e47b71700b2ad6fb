// A minimal Java (JSSE) HTTPS endpoint for the tests. Tomcat, Jetty and Spring Boot terminate TLS with
// the same JSSE code (javax.net.ssl): this server uses its SSLServerSocket directly, because the JDK's
// own com.sun.net.httpserver.HttpsServer closes a failed handshake without sending JSSE's alert
// (measured), which no production Java server does.
//
//   java MtlsServer CERT_CHAIN.pem KEY.pem(PKCS#8) PORT TRUST.pem CLIENT_AUTH PROTOCOLS [PORT TRUST.pem ...]
//
// One JVM serves several configurations, one listener each (a JVM takes seconds to start).
// CLIENT_AUTH: need = Tomcat certificateVerification="required" / Spring Boot server.ssl.client-auth=need;
//              want = "optional" / client-auth=want; none.  PROTOCOLS: e.g. TLSv1.2,TLSv1.3
// The trust store holds every certificate of TRUST.pem; JSSE advertises all of them as CA names.
// Answers each request 200 with the client certificate's subject, or 403 when none was presented (the
// app's own check), then closes. Prints "listening PORT" once it accepts connections; a rejected
// handshake prints "rejected on PORT: <JSSE's message>".

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.InvalidKeySpecException;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;
import java.util.Collection;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

public final class MtlsServer {
    public static void main(String[] args) throws Exception {
        CertificateFactory x509 = CertificateFactory.getInstance("X.509");
        Collection<? extends Certificate> chain = x509.generateCertificates(Files.newInputStream(Path.of(args[0])));
        PrivateKey key = readKey(Path.of(args[1]));
        KeyStore identity = KeyStore.getInstance("PKCS12");
        identity.load(null, null);
        identity.setKeyEntry("server", key, new char[0], chain.toArray(new Certificate[0]));
        KeyManagerFactory keys = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        keys.init(identity, new char[0]);
        for (int at = 2; at + 3 < args.length; at += 4) {
            SSLServerSocket listener = listen(keys, x509, Integer.parseInt(args[at]), Path.of(args[at + 1]),
                    args[at + 2], args[at + 3].split(","));
            Thread accepting = new Thread(() -> accept(listener));
            accepting.start();
            System.out.println("listening " + listener.getLocalPort());
        }
        System.out.flush();
    }

    private static SSLServerSocket listen(KeyManagerFactory keys, CertificateFactory x509, int port, Path trustFile,
            String clientAuth, String[] protocols) throws Exception {
        Collection<? extends Certificate> trusted = x509.generateCertificates(Files.newInputStream(trustFile));

        KeyStore trustStore = KeyStore.getInstance("PKCS12");
        trustStore.load(null, null);
        int index = 0;
        for (Certificate cert : trusted) {
            trustStore.setCertificateEntry("ca" + index++, cert);
        }
        TrustManagerFactory trust = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        trust.init(trustStore);

        SSLContext context = SSLContext.getInstance("TLS");
        context.init(keys.getKeyManagers(), trust.getTrustManagers(), null);
        SSLServerSocket listener = (SSLServerSocket) context.getServerSocketFactory()
                .createServerSocket(port, 50, InetAddress.getByName("127.0.0.1"));
        listener.setEnabledProtocols(protocols);
        listener.setNeedClientAuth(clientAuth.equals("need"));
        if (clientAuth.equals("want")) {
            listener.setWantClientAuth(true);
        }
        return listener;
    }

    private static void accept(SSLServerSocket listener) {
        while (true) {
            try {
                SSLSocket socket = (SSLSocket) listener.accept();
                Thread thread = new Thread(() -> serve(socket));
                thread.setDaemon(true);
                thread.start();
            } catch (java.io.IOException closed) {
                return;
            }
        }
    }

    private static void serve(SSLSocket socket) {
        try (socket) {
            socket.setSoTimeout(10_000);
            socket.startHandshake();
            InputStream in = socket.getInputStream();
            readHead(in);
            String subject;
            int status;
            try {
                Certificate[] peer = socket.getSession().getPeerCertificates();
                subject = ((X509Certificate) peer[0]).getSubjectX500Principal().getName();
                status = 200;
            } catch (SSLPeerUnverifiedException none) {
                subject = "no client certificate";
                status = 403;
            }
            byte[] body = ("{\"client_certificate\": \"" + subject.replace("\"", "'") + "\"}\n")
                    .getBytes(StandardCharsets.UTF_8);
            String head = "HTTP/1.1 " + status + (status == 200 ? " OK" : " Forbidden") + "\r\n"
                    + "Content-Type: application/json\r\nContent-Length: " + body.length
                    + "\r\nConnection: close\r\n\r\n";
            OutputStream out = socket.getOutputStream();
            out.write(head.getBytes(StandardCharsets.US_ASCII));
            out.write(body);
            out.flush();
        } catch (Exception rejected) {
            System.out.println("rejected on " + socket.getLocalPort() + ": " + rejected);
            System.out.flush();
        }
    }

    private static void readHead(InputStream in) throws Exception {
        ByteArrayOutputStream head = new ByteArrayOutputStream();
        int matched = 0;
        byte[] end = {'\r', '\n', '\r', '\n'};
        while (matched < 4) {
            int b = in.read();
            if (b < 0) {
                return;
            }
            head.write(b);
            matched = b == end[matched] ? matched + 1 : (b == '\r' ? 1 : 0);
        }
    }

    private static PrivateKey readKey(Path path) throws Exception {
        String pem = Files.readString(path);
        String base64 = pem.replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
        PKCS8EncodedKeySpec spec = new PKCS8EncodedKeySpec(Base64.getDecoder().decode(base64));
        try {
            return KeyFactory.getInstance("RSA").generatePrivate(spec);
        } catch (InvalidKeySpecException notRsa) {
            return KeyFactory.getInstance("EC").generatePrivate(spec);
        }
    }
}
