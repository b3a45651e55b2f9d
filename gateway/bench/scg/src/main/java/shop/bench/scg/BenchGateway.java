package shop.bench.scg;

import java.security.Principal;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.cloud.gateway.filter.ratelimit.KeyResolver;
import org.springframework.context.annotation.Bean;
import org.springframework.security.config.Customizer;
import org.springframework.security.config.web.server.ServerHttpSecurity;
import org.springframework.security.web.server.SecurityWebFilterChain;
import org.springframework.security.web.server.context.NoOpServerSecurityContextRepository;

/**
 * Spring Cloud Gateway configured the way the seed document configures it: every request
 * needs a valid Keycloak access token (OAuth2 resource server, JWT checked against the
 * issuer's JWK set, issuer and audience), the Authorization header travels on to the
 * upstream unchanged (what TokenRelay achieves for a resource server), and a Redis request
 * rate limiter keyed by the token's subject. Routes and limits are in application.yml.
 */
@SpringBootApplication
public class BenchGateway {

    public static void main(String[] args) {
        SpringApplication.run(BenchGateway.class, args);
    }

    @Bean
    SecurityWebFilterChain security(ServerHttpSecurity http) {
        return http
                .csrf(ServerHttpSecurity.CsrfSpec::disable)
                // A stateless API: no web session behind the security context.
                .securityContextRepository(NoOpServerSecurityContextRepository.getInstance())
                .authorizeExchange(ex -> ex.anyExchange().authenticated())
                .oauth2ResourceServer(rs -> rs.jwt(Customizer.withDefaults()))
                .build();
    }

    /** One rate-limit bucket per token subject, as the Go gateway keys its buckets. */
    @Bean
    KeyResolver subjectKeyResolver() {
        return exchange -> exchange.getPrincipal().map(Principal::getName);
    }
}
