# The reference log-likelihoods of the boundary scan (run by scan.py):
#   Rscript fit_scan.R data.csv specs.json out.json
# Each fit with lme4's default bobyqa, bobyqa with tight tolerances, Nelder-Mead
# and nloptwrap (BOBYQA of NLopt); the reference is the best log-likelihood.
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], colClasses = c(subject = "character", clinic = "character"))
specs <- fromJSON(args[2], simplifyVector = FALSE)
controls <- list(
  bobyqa = lmerControl(optimizer = "bobyqa"),
  bobyqa_tight = lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 0.1, rhoend = 1e-10, maxfun = 1e5)),
  Nelder_Mead = lmerControl(optimizer = "Nelder_Mead", optCtrl = list(FtolAbs = 1e-12, FtolRel = 1e-15,
                                                                       maxfun = 1e5)),
  nloptwrap = lmerControl(optimizer = "nloptwrap", optCtrl = list(ftol_abs = 1e-12, xtol_abs = 1e-10))
)
out <- lapply(specs, function(s) {
  di <- d[d$fit_id == s$id, ]
  re <- if (isTRUE(s$random_slope)) "(time | subject)" else "(1 | subject)"
  f <- paste("y ~ time +", re)
  if (!is.null(s$cluster)) f <- paste(f, "+ (1 | clinic)")
  ll <- list(); th <- list()
  for (nm in names(controls)) {
    m <- tryCatch(suppressWarnings(suppressMessages(
      lmer(as.formula(f), di, REML = identical(s$method, "REML"), control = controls[[nm]]))),
      error = function(e) NULL)
    if (!is.null(m)) { ll[[nm]] <- as.numeric(logLik(m)); th[[nm]] <- unname(getME(m, "theta")) }
  }
  best <- names(ll)[which.max(unlist(ll))]
  list(id = s$id, best = ll[[best]], by_optimizer = ll, theta = th[[best]],
       r_version = R.version.string, lme4_version = as.character(packageVersion("lme4")))
})
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA), args[3])
