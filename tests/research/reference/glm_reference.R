# Reference fits for issue 13's federated GLM and Cox models: R's own glm() and
# survival::coxph() on the pooled *training* rows of the public datasets in deploy/data
# (every row not listed in splits/<name>.test_rows.txt), every column as given (no
# transform, no standardisation). A federated fit over any number of sites must give these
# coefficients and standard errors to 1e-6 relative.
#
# Regenerate (Debian 12: r-base-core, r-cran-survival), from the repository's root:
#   Rscript tests/research/reference/glm_reference.R deploy/data tests/research/reference
# It writes glm_coefficients.csv (one row per model and term) and glm_models.csv (one row
# per model: family, rows, deviance, AIC, iterations, R and survival versions). Site fixed
# effects' terms are named siteSITE_1 .. as R names a factor's levels.
#
# Conventions (what the C++ side reports as `statistic`, `p_value`, `ci_low`, `ci_high`):
#   - binomial, poisson: Wald z = estimate / SE, two-sided normal p, estimate +- z_0.975 SE
#     (summary.glm and confint.default);
#   - gaussian: SE with the dispersion estimated as the Pearson chi-square / (n - p), t with
#     n - p degrees of freedom, two-sided t p, estimate +- t_{0.975, n-p} SE (summary.glm;
#     confint.lm's interval);
#   - Cox: Wald z on log hazard ratios, normal p and CI (summary.coxph); ties by Breslow's
#     method and by Efron's (R's default), both given.
# The intercept is named "(Intercept)", as R names it.

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2) stop("usage: glm_reference.R DATA_DIR OUT_DIR")
data_dir <- args[1]
out_dir <- args[2]
suppressPackageStartupMessages(library(survival))

training_rows <- function(name) {
  data <- read.csv(file.path(data_dir, paste0(name, ".csv")), check.names = FALSE)
  test <- scan(file.path(data_dir, "splits", paste0(name, ".test_rows.txt")), quiet = TRUE)
  data[-(test + 1), , drop = FALSE]  # the split's indices are 0-based data rows
}

coefficients_rows <- list()
model_rows <- list()

add_glm <- function(model, fit, family) {
  s <- summary(fit)
  table <- s$coefficients
  if (family == "gaussian") {
    q <- qt(0.975, df = fit$df.residual)
  } else {
    q <- qnorm(0.975)
  }
  coefficients_rows[[length(coefficients_rows) + 1]] <<- data.frame(
    model = model, term = rownames(table), estimate = table[, 1], std_error = table[, 2],
    statistic = table[, 3], p_value = table[, 4],
    ci_low = table[, 1] - q * table[, 2], ci_high = table[, 1] + q * table[, 2])
  model_rows[[length(model_rows) + 1]] <<- data.frame(
    model = model, family = family, rows = nrow(fit$model), deviance = fit$deviance,
    null_deviance = fit$null.deviance, aic = fit$aic, iterations = fit$iter,
    df_residual = fit$df.residual, dispersion = s$dispersion, loglik = NA_real_,
    r_version = R.version.string, survival_version = as.character(packageVersion("survival")))
}

add_cox <- function(model, fit) {
  table <- summary(fit)$coefficients  # coef, exp(coef), se(coef), z, Pr(>|z|)
  q <- qnorm(0.975)
  coefficients_rows[[length(coefficients_rows) + 1]] <<- data.frame(
    model = model, term = rownames(table), estimate = table[, 1], std_error = table[, 3],
    statistic = table[, 4], p_value = table[, 5],
    ci_low = table[, 1] - q * table[, 3], ci_high = table[, 1] + q * table[, 3])
  model_rows[[length(model_rows) + 1]] <<- data.frame(
    model = model, family = "cox", rows = fit$n, deviance = NA_real_, null_deviance = NA_real_,
    aic = NA_real_, iterations = fit$iter, df_residual = NA_real_, dispersion = NA_real_,
    loglik = fit$loglik[2], r_version = R.version.string,
    survival_version = as.character(packageVersion("survival")))
}

# Binomial: all columns but the label as raw features (deploy/examples/smoking_nhis_glm.textproto).
smoking <- training_rows("smoking_nhis")
add_glm("smoking_nhis_binomial", glm(smoker ~ ., family = binomial(), data = smoking,
                                     control = glm.control(epsilon = 1e-14, maxit = 100)),
        "binomial")

# Gaussian: likewise (deploy/examples/diabetes_glm.textproto).
diabetes <- training_rows("diabetes_progression")
add_glm("diabetes_gaussian", glm(progression ~ ., family = gaussian(), data = diabetes,
                                 control = glm.control(epsilon = 1e-14, maxit = 100)),
        "gaussian")

# Poisson: the count of positive lymph nodes from the other baseline covariates, and the
# death rate (events per day of follow-up: offset log(time)).
rotterdam <- training_rows("rotterdam_survival")
baseline <- setdiff(names(rotterdam), c("nodes", "time", "event"))
add_glm("rotterdam_nodes_poisson",
        glm(reformulate(baseline, "nodes"), family = poisson(), data = rotterdam,
            control = glm.control(epsilon = 1e-14, maxit = 100)),
        "poisson")
covariates <- setdiff(names(rotterdam), c("time", "event"))
add_glm("rotterdam_rate_poisson",
        glm(reformulate(covariates, "event"), family = poisson(), data = rotterdam,
            offset = log(time), control = glm.control(epsilon = 1e-14, maxit = 100)),
        "poisson")

# Cox proportional hazards on overall survival, both tie methods.
for (ties in c("breslow", "efron")) {
  fit <- coxph(reformulate(covariates, "Surv(time, event)"), data = rotterdam, ties = ties,
               control = coxph.control(eps = 1e-10, iter.max = 100))
  add_cox(paste0("rotterdam_cox_", ties), fit)
}

# Site fixed effects (one intercept per site, the ds.glm way) and a Cox model stratified by
# site, for 3 and 5 sites: the training rows are dealt round-robin, in file order (the i-th
# training row, counting from 0, goes to site i mod k, named site_1 .. site_k).
dealt <- function(data, k) {
  data$site <- factor(paste0("site_", (seq_len(nrow(data)) - 1) %% k + 1))
  data
}
for (k in c(3, 5)) {
  fe <- function(data, label) {
    features <- setdiff(names(data), c(label, "site"))
    reformulate(c("0", "site", features), label)
  }
  s <- dealt(smoking, k)
  add_glm(paste0("smoking_nhis_binomial_site_fe_", k),
          glm(fe(s, "smoker"), family = binomial(), data = s,
              control = glm.control(epsilon = 1e-14, maxit = 100)),
          "binomial")
  d <- dealt(diabetes, k)
  add_glm(paste0("diabetes_gaussian_site_fe_", k),
          glm(fe(d, "progression"), family = gaussian(), data = d,
              control = glm.control(epsilon = 1e-14, maxit = 100)),
          "gaussian")
  r <- dealt(rotterdam, k)
  for (ties in c("breslow", "efron")) {
    fit <- coxph(reformulate(c(covariates, "strata(site)"), "Surv(time, event)"), data = r,
                 ties = ties, control = coxph.control(eps = 1e-10, iter.max = 100))
    add_cox(paste0("rotterdam_cox_", ties, "_site_strata_", k), fit)
  }
}

# A pooled (unstratified) Cox model on a declared time grid (GlmSpec.pooled_time_grid):
# times put on a 30-day grid of 200 times, rows beyond it censored at its end.
grid_unit <- 30
grid_points <- 200
on_grid <- function(data) {
  k <- ceiling(data$time / grid_unit)
  data$event <- ifelse(k > grid_points, 0, data$event)
  data$time <- pmin(k, grid_points) * grid_unit
  data
}
for (ties in c("breslow", "efron")) {
  fit <- coxph(reformulate(covariates, "Surv(time, event)"), data = on_grid(rotterdam),
               ties = ties, control = coxph.control(eps = 1e-10, iter.max = 100))
  add_cox(paste0("rotterdam_cox_", ties, "_pooled_grid"), fit)
}

# Data preparation (DatasetSpec.prepare): a messy copy of smoking_nhis — education and sex
# as text categories, every 23rd age and every 29th education missing (NA), a free-text
# notes column that no task uses — written to OUT_DIR/smoking_nhis_messy.csv (the same rows,
# so the same test-row split), and R's fit after the preparation the task declares
# (tests/research/glm_prepare_test.cc): age's missing cells take the mean of the present
# training ages, education's the most frequent training level (the first declared on a
# tie), education is one-hot against "none", sex against "male". Terms are named as Tessera
# names the one-hot columns: education=hs_grad, sex=female.
raw <- read.csv(file.path(data_dir, "smoking_nhis.csv"))
education <- ifelse(raw$edu_master == 1, "master",
             ifelse(raw$edu_college == 1, "college",
             ifelse(raw$edu_some_college == 1, "some_college",
             ifelse(raw$edu_hs_grad == 1, "hs_grad", "none"))))
age <- raw$age
age[seq(5, nrow(raw), by = 23)] <- NA
education[seq(11, nrow(raw), by = 29)] <- NA
messy <- data.frame(ban = raw$ban, age = age, education = education, afam = raw$afam,
                    hispanic = raw$hispanic, sex = ifelse(raw$female == 1, "female", "male"),
                    notes = ifelse(seq_len(nrow(raw)) %% 7 == 0, "follow-up call", ""),
                    smoker = raw$smoker)
write.csv(messy, file.path(out_dir, "smoking_nhis_messy.csv"), row.names = FALSE,
          quote = FALSE, na = "NA")
test <- scan(file.path(data_dir, "splits", "smoking_nhis.test_rows.txt"), quiet = TRUE)
m <- messy[-(test + 1), ]
m$age[is.na(m$age)] <- mean(m$age, na.rm = TRUE)
levels_education <- c("none", "hs_grad", "some_college", "college", "master")
counts <- table(factor(m$education, levels = levels_education))
m$education[is.na(m$education)] <- names(counts)[which.max(counts)]
m$education <- factor(m$education, levels = levels_education)
m$sex <- factor(m$sex, levels = c("male", "female"))
add_glm("smoking_nhis_messy_prepared_binomial",
        glm(smoker ~ ban + age + education + afam + hispanic + sex, family = binomial(),
            data = m, control = glm.control(epsilon = 1e-14, maxit = 100)),
        "binomial")
last <- length(coefficients_rows)
coefficients_rows[[last]]$term <- sub("^education", "education=",
                                      sub("^sex", "sex=", coefficients_rows[[last]]$term))

write_rows <- function(rows, file) {
  table <- do.call(rbind, rows)
  numeric <- vapply(table, is.numeric, logical(1))
  table[numeric] <- lapply(table[numeric], function(x) ifelse(is.na(x), "", sprintf("%.17g", x)))
  write.csv(table, file.path(out_dir, file), row.names = FALSE, quote = FALSE)
}
write_rows(coefficients_rows, "glm_coefficients.csv")
write_rows(model_rows, "glm_models.csv")
