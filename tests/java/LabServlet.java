// The web application of the tests' Tomcat (tests/support/tomcat.py): every path answers 200 "ok <the client
// certificate's subject>", or 403 "no client certificate" when none was presented (the app's own check, as
// tests/java/MtlsServer.java answers). Its web.xml puts a CLIENT-CERT constraint on /secure: there Tomcat asks
// for the certificate itself, after the handshake, before this servlet runs.

import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.security.cert.X509Certificate;

public final class LabServlet extends HttpServlet {
    @Override
    protected void service(HttpServletRequest request, HttpServletResponse response) throws IOException {
        X509Certificate[] chain = (X509Certificate[]) request.getAttribute("jakarta.servlet.request.X509Certificate");
        response.setContentType("text/plain");
        if (chain == null || chain.length == 0) {
            response.setStatus(403);
            response.getWriter().print("no client certificate\n");
            return;
        }
        response.getWriter().print("ok " + chain[0].getSubjectX500Principal().getName() + "\n");
    }
}
